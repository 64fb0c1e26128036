"""P3B5 data: the P3B3 file loader, the text-table loader and the report generator, with every bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from darts.config import load_config
from darts.data import DataFileError, DataWarning, clinical_reports, load_p3b3, load_text_table
from darts.data.reports import CLASSES


def write_p3b3(folder, train_x=None, train_y=None, test_x=None, test_y=None):
    rng = np.random.default_rng(0)
    arrays = {
        "train_X": rng.integers(0, 50, (12, 20)) if train_x is None else train_x,
        "train_Y": np.stack([rng.choice([3, 7, 42], 12), rng.choice([0, 1], 12), rng.choice([5, 9], 12),
                             rng.choice([1, 2, 3], 12)], 1) if train_y is None else train_y,
        "test_X": rng.integers(0, 60, (5, 20)) if test_x is None else test_x,
        "test_Y": np.array([[3, 0, 5, 1], [7, 1, 9, 2], [42, 0, 5, 3], [3, 1, 9, 1], [11, 0, 5, 2]])
        if test_y is None else test_y,
    }
    folder.mkdir(exist_ok=True)
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", array)
    return arrays


def test_p3b3_labels_are_reindexed_and_the_vocabulary_comes_from_the_data(tmp_path):
    arrays = write_p3b3(tmp_path / "p3b3")
    with pytest.warns(DataWarning, match=r"test label\(s\) \[11\] \(task 'subsite'\) never appear in training"):
        documents = load_p3b3(tmp_path / "p3b3", sequence_length=25)
    assert documents.vocab_size == max(arrays["train_X"].max(), arrays["test_X"].max()) + 1
    assert documents.train_tokens.shape == (12, 25) and (documents.train_tokens[:, 20:] == 0).all()
    mapping = documents.artifacts["labels.json"]["classes"]
    assert mapping["subsite"] == [3, 7, 11, 42]  # train and test labels together, sorted
    assert documents.classes == {"subsite": 4, "laterality": 2, "behavior": 2, "grade": 3}
    expected = [mapping["subsite"].index(v) for v in arrays["test_Y"][:, 0]]
    assert documents.test_labels["subsite"].tolist() == expected
    with pytest.warns(DataWarning):
        shorter = load_p3b3(tmp_path / "p3b3", sequence_length=8)
    assert shorter.test_tokens.tolist() == arrays["test_X"][:, :8].tolist()


@pytest.mark.parametrize("change, message", [
    ({"train_Y": np.zeros((11, 4), dtype=np.int64)}, "train_X.npy has 12 documents but train_Y.npy has 11"),
    ({"test_Y": np.zeros((5, 3), dtype=np.int64)}, "test_Y.npy: label column 3 ('grade') is missing"),
    ({"train_X": np.full((12, 20), 0.5)}, "train_X.npy: token ids must be integers, got dtype float64"),
    ({"test_Y": np.array([["a"] * 4] * 5)}, "test_Y.npy: labels must be integers, got dtype <U1"),
    ({"train_X": np.zeros((12, 4, 5), dtype=np.int64)}, "train_X.npy: expected a 2-D array (documents, tokens)"),
    ({"test_X": np.full((5, 20), -3)}, "test_X.npy: token id -3 is negative"),
    ({"train_X": np.zeros((0, 20), dtype=np.int64)}, "train_X.npy: the array is empty"),
])
def test_p3b3_bad_files_are_named_with_the_problem(tmp_path, change, message):
    write_p3b3(tmp_path / "p3b3", **{k.replace("X", "x").replace("Y", "y"): v for k, v in change.items()})
    with pytest.raises(DataFileError) as error:
        load_p3b3(tmp_path / "p3b3")
    assert message in str(error.value)


def test_p3b3_token_ids_beyond_a_given_vocabulary_and_missing_or_empty_files(tmp_path):
    write_p3b3(tmp_path / "p3b3")
    with pytest.raises(DataFileError, match=r"test_X.npy: token id 5\d is out of range for vocab_size 50"):
        load_p3b3(tmp_path / "p3b3", vocab_size=50)
    (tmp_path / "p3b3" / "test_Y.npy").write_bytes(b"")
    with pytest.raises(DataFileError, match="test_Y.npy: the file is empty"):
        load_p3b3(tmp_path / "p3b3")
    (tmp_path / "p3b3" / "test_Y.npy").unlink()
    with pytest.raises(DataFileError, match="test_Y.npy: file not found"):
        load_p3b3(tmp_path / "p3b3")
    with pytest.raises(DataFileError, match="not a folder"):
        load_p3b3(tmp_path / "nowhere")


def write_table(path, rows, separator=","):
    header = ["text", "site", "side"]
    path.write_text("\n".join(separator.join(map(str, row)) for row in [header, *rows]) + "\n")


REPORTS = [("Invasive carcinoma of the left breast", "breast", "L"),
           ("Benign lesion, right lung", "lung", "R"),
           ("carcinoma of the breast, left side", "breast", "L"),
           ("lung mass on the right", "lung", "R")]


@pytest.mark.parametrize("suffix, separator", [(".csv", ","), (".tsv", "\t")])
def test_text_tables_build_the_vocabulary_on_the_training_split_only(tmp_path, suffix, separator):
    rows = [(text.replace(",", " "), site, side) for text, site, side in REPORTS]
    write_table(tmp_path / f"train{suffix}", rows, separator)
    write_table(tmp_path / f"test{suffix}", [("zebra carcinoma left", "breast", "L")], separator)
    documents = load_text_table(tmp_path / f"train{suffix}", "text", ["site", "side"], tmp_path / f"test{suffix}",
                                sequence_length=6)
    vocabulary = documents.artifacts["vocabulary.json"]["tokens"]
    assert vocabulary[:2] == ["<pad>", "<unk>"] and "zebra" not in vocabulary and "carcinoma" in vocabulary
    test_ids = documents.test_tokens[0].tolist()
    assert test_ids[:3] == [1, vocabulary.index("carcinoma"), vocabulary.index("left")] and test_ids[3:] == [0, 0, 0]
    assert documents.classes == {"site": 2, "side": 2}
    assert documents.artifacts["labels.json"]["classes"]["side"] == ["L", "R"]


def test_a_text_table_without_a_test_file_is_split(tmp_path):
    write_table(tmp_path / "reports.csv", [(f"report {i} words", "a" if i % 2 else "b", "x") for i in range(10)])
    documents = load_text_table(tmp_path / "reports.csv", "text", ["site"], test_fraction=0.3, sequence_length=4)
    assert len(documents.train_tokens) == 7 and len(documents.test_tokens) == 3


@pytest.mark.parametrize("content, message", [
    ("", "the file is empty"),
    ("text,site\nsome words,breast\n", "label column(s) ['side'] missing; the file has columns: text, site"),
    ("body,site,side\nwords,a,b\n", "text column(s) ['text'] missing"),
    ("text,site,side\n", "the table has a header but no rows"),
    ("text,site,side\nwords,,L\nmore,b,R\n", "label column(s) ['site'] have empty cells"),
])
def test_bad_text_tables_are_named_with_the_problem(tmp_path, content, message):
    (tmp_path / "reports.csv").write_text(content)
    with pytest.raises(DataFileError) as error:
        load_text_table(tmp_path / "reports.csv", "text", ["site", "side"])
    assert message in str(error.value) and "reports.csv" in str(error.value)


def test_generated_reports_have_the_p3b3_shapes_and_class_counts():
    tokens, labels = clinical_reports(400, length=1500, seed=3)
    assert tokens.shape == (400, 1500) and tokens.dtype == np.int64 and labels.shape == (400, 4)
    assert [len(np.unique(labels[:, i])) for i in range(4)] == list(CLASSES)
    lengths = (tokens > 0).sum(1)
    assert lengths.min() >= 500 and (tokens[np.arange(400), np.minimum(lengths, 1499)] == 0).sum() >= 390
    again, _ = clinical_reports(400, length=1500, seed=3)
    assert (again == tokens).all() and not (clinical_reports(400, length=1500, seed=4)[0] == tokens).all()


@pytest.mark.slow
def test_the_text_vocabulary_and_labels_are_saved_with_the_run(tmp_path):
    from darts.workflows import search

    rows = [(f"{text} {i}", site, side) for i in range(6) for text, site, side in REPORTS]
    write_table(tmp_path / "reports.csv", [(t.replace(",", " "), a, b) for t, a, b in rows])
    config = load_config("p3b5-quick", ["--data.source", "text", "--data.path", str(tmp_path / "reports.csv"),
                                        "--data.tasks", "[site, side]", "--data.sequence_length", "12",
                                        "--model.channels", "4", "--search.epochs", "1",
                                        "--search.warmup_epochs", "0", "--search.batch_size", "4",
                                        "--model.embedding_dim", "8", "--log.plots", "false",
                                        "--search.order", "first", "--search.selection", "alpha"])
    run = search(config, tmp_path / "runs")
    vocabulary = json.loads((run / "vocabulary.json").read_text())["tokens"]
    assert "carcinoma" in vocabulary and json.loads((run / "labels.json").read_text())["tasks"] == ["site", "side"]
