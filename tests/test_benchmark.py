"""The P3B5 benchmark: the generator is learnable, CANDLE model files map, the quick benchmark end to end."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from darts.cli import main
from darts.config import ConfigError, candle_overrides, load_config
from darts.workflows import train

CANDLE_DEFAULT = """[Global_Params]
model_name = 'p3b5'
unrolled = True
data_url = 'ftp://ftp.mcs.anl.gov/pub/candle/public/benchmarks/Pilot3/'
train_data = 'P3B3_data.tar.gz'
learning_rate = 0.01
learning_rate_min = 0.001
momentum = 0.9
weight_decay = 3e-4
grad_clip = 5
batch_size = 100
epochs = 10
seed = 13
"""


@pytest.mark.slow
def test_a_quick_run_on_generated_reports_beats_the_majority_class_on_every_task(tmp_path):
    config = load_config("p3b5-quick", ["--train.epochs", "4"])  # 4 of the preset's 6 epochs: enough to show it
    run = train(config, "DARTS_V2", tmp_path, genotype_family="conv1d")
    results = json.loads((run / "results.json").read_text())
    for task in ("subsite", "laterality", "behavior", "grade"):
        accuracy, majority = results["test"][f"test_{task}_accuracy"], results["baseline"][f"majority_{task}_accuracy"]
        assert accuracy > majority + 0.05, (task, accuracy, majority)
    assert results["test"]["test_accuracy"] > 0.75  # the mean over the tasks; the majority class gives 0.37


def test_candles_model_file_sets_the_matching_options(tmp_path):
    path = tmp_path / "p3b5_default_model.txt"
    path.write_text(CANDLE_DEFAULT)
    overrides, ignored = candle_overrides(path)
    config = load_config("p3b5-quick", overrides)
    assert config.search.order == "second" and config.seed == 13
    assert (config.search.lr, config.search.lr_min, config.search.momentum, config.search.weight_decay,
            config.search.grad_clip, config.search.batch_size, config.search.epochs) == (0.01, 0.001, 0.9, 3e-4, 5, 100, 10)
    assert config.train.batch_size == 100 and config.train.lr == 0.01
    assert config.search.optimizer == config.train.optimizer == "sgd"  # CANDLE's rates are SGD's, not AdamW's
    assert set(ignored) == {"model_name", "data_url", "train_data"} and "never downloads" in ignored["data_url"]
    path.write_text(CANDLE_DEFAULT.replace("unrolled = True", "unrolled = False") + "learnig_rate = 0.1\n")
    with pytest.raises(ConfigError, match="CANDLE key 'learnig_rate' has no meaning here; did you mean 'learning_rate'"):
        candle_overrides(path)
    path.write_text("learning_rate = 0.1\n")
    with pytest.raises(ConfigError, match="not a CANDLE model file"):
        candle_overrides(path)


def test_the_full_benchmark_needs_the_users_files(tmp_path, capsys):
    assert main(["bench", "p3b5", "--full", "--runs", str(tmp_path)]) == 2
    assert "set data.path" in capsys.readouterr().err
    assert main(["bench", "p3b5", "--full", "--runs", str(tmp_path), "--data.path", str(tmp_path / "none")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_the_quick_benchmark_end_to_end(tmp_path, capsys):
    shrink = ["--log.plots", "false",  # the pictures are tested elsewhere: seconds a run
              "--data.documents", "240", "--data.test_documents", "80", "--data.sequence_length", "40",
              "--data.vocab_size", "300", "--model.channels", "4", "--model.embedding_dim", "8",
              "--train.channels", "4", "--search.epochs", "1",
              "--search.warmup_epochs", "0", "--train.epochs", "1", "--bench.baseline_filters", "8",
              "--model.nodes", "2", "--search.selection_examples", "24",  # the preset's selection, smaller
              # the preset benchmarks first order; both orders here, with SGD, whose virtual step is exact
              "--bench.orders", "[first, second]", "--search.optimizer", "sgd"]
    candle = tmp_path / "candle.txt"
    candle.write_text("[Global_Params]\nbatch_size = 40\n")
    assert main(["bench", "p3b5", "--quick", "--runs", str(tmp_path), "--quiet", "--candle", str(candle), *shrink]) == 0
    out = capsys.readouterr().out
    assert "subsite accuracy" in out and "mean macro-F1" in out
    (bench,) = tmp_path.glob("bench-p3b5-*")
    table = pd.read_csv(bench / "results.csv", index_col="model")
    assert list(table.index) == ["majority class", "DARTS first order", "DARTS second order", "random genotype",
                                 "DARTS_V2 (transferred)", "textcnn (hand-designed)"]
    for task in ("subsite", "laterality", "behavior", "grade"):
        assert {f"{task} accuracy", f"{task} micro-F1", f"{task} macro-F1"} <= set(table.columns)
    assert {"mean accuracy", "mean micro-F1", "mean macro-F1", "parameters", "search seconds", "train seconds"} \
        <= set(table.columns)
    assert table.loc["DARTS second order", "search seconds"] > 0 and table.loc["textcnn (hand-designed)", "parameters"] > 0
    assert (bench / "results.md").read_text().startswith("mean over 1 seed")
    assert load_config(bench / "config.yaml").search.batch_size == 40  # the CANDLE key reached the runs
    # sub-runs are named after their rows
    assert sorted(p.name for p in bench.iterdir() if p.is_dir()) == [
        "search-first-order-seed0", "search-second-order-seed0", "train-darts_v2-seed0", "train-first-order-seed0",
        "train-random-1-seed0", "train-second-order-seed0", "train-textcnn-seed0"]
    assert set(table.loc[["DARTS first order", "DARTS second order"], "verdict"]) <= {"decisive", "inconclusive"}
    assert "search verdict:" in out  # printed in quiet mode too
    trained = bench / "train-textcnn-seed0"  # the baseline's run can be evaluated like any other
    assert main(["evaluate", str(trained)]) == 0


@pytest.mark.slow
def test_seeds_give_mean_and_std_and_paired_wins_over_random_genotypes(tmp_path, capsys):
    shrink = ["--log.plots", "false", "--data.documents", "120", "--data.test_documents", "40",
              "--data.sequence_length", "24",
              "--data.vocab_size", "200", "--model.channels", "4", "--model.embedding_dim", "8", "--train.channels",
              "4", "--search.epochs", "1",
              "--search.warmup_epochs", "0", "--train.epochs", "1", "--bench.orders", "[first]", "--bench.seeds", "2",
              "--bench.random_genotypes", "2", "--bench.baseline", "null", "--bench.transfer", "null",
              "--search.selection", "alpha"]
    assert main(["bench", "p3b5", "--quick", "--runs", str(tmp_path), "--quiet", *shrink]) == 0
    out = capsys.readouterr().out
    (bench,) = tmp_path.glob("bench-p3b5-*")
    table = pd.read_csv(bench / "results.csv")
    assert sorted(table["seed"].unique()) == [0, 1]
    assert (table["model"] == "random genotype").sum() == 4 and (table["model"] == "DARTS first order").sum() == 2
    results = json.loads((bench / "results.json").read_text())
    summary = {row["model"]: row for row in results["summary"]}
    searched = table[table["model"] == "DARTS first order"]["mean accuracy"]
    assert summary["DARTS first order"]["mean accuracy mean"] == pytest.approx(searched.mean(), abs=1e-4)
    assert summary["DARTS first order"]["mean accuracy std"] == pytest.approx(searched.std(), abs=1e-4)
    assert summary["random genotype"]["runs"] == 4
    # the wins, counted by hand: a seed's search against the mean of that seed's random genotypes
    random = table[table["model"] == "random genotype"].groupby("seed")["mean accuracy"].mean()
    searched = table[table["model"] == "DARTS first order"]
    wins = sum(row["mean accuracy"] > random[row["seed"]] for _, row in searched.iterrows())
    assert results["wins_over_random"] == {"DARTS first order": f"{wins}/2"}
    assert "+-" in out and "wins over random" in out
    assert len({p.name for p in bench.glob("random_genotype_seed*_*.json")}) == 4


@pytest.mark.slow
def test_the_full_preset_runs_on_p3b3_files(tmp_path, capsys):
    import numpy as np

    from darts.data import clinical_reports

    tokens, labels = clinical_reports(160, length=60, vocab_size=400, seed=1)
    folder = tmp_path / "P3B3"
    folder.mkdir()
    labels[:, 0] += 100  # CANDLE's labels need not start at 0 nor be contiguous
    for split, rows in (("train", slice(0, 120)), ("test", slice(120, 160))):
        np.save(folder / f"{split}_X.npy", tokens[rows].astype(np.int32))
        np.save(folder / f"{split}_Y.npy", labels[rows])
    shrink = ["--log.plots", "false", "--data.path", str(folder), "--model.embedding_dim", "8", "--search.epochs", "1",
              "--search.warmup_epochs", "0", "--train.epochs",
              "1", "--search.batch_size", "20", "--train.batch_size", "20", "--bench.orders", "[first]",
              "--bench.random_genotypes", "0", "--bench.baseline_filters", "4", "--bench.transfer", "null"]
    assert main(["bench", "p3b5", "--full", "--runs", str(tmp_path / "runs"), "--quiet", *shrink]) == 0
    (bench,) = (tmp_path / "runs").iterdir()
    table = pd.read_csv(bench / "results.csv", index_col="model")
    assert list(table.index) == ["majority class", "DARTS first order", "textcnn (hand-designed)"]
    (search_run,) = bench.glob("search-*")
    mapping = json.loads((search_run / "labels.json").read_text())["classes"]["subsite"]
    assert mapping == sorted(set(labels[:, 0].tolist())) and min(mapping) >= 100
    assert load_config(search_run / "config.yaml").search.order == "first"


@pytest.mark.slow
def test_the_benchmark_searches_a_recurrent_cell_in_the_same_table(tmp_path, capsys):
    shrink = ["--log.plots", "false", "--data.documents", "160", "--data.test_documents", "60",
              "--data.sequence_length", "24",
              "--data.vocab_size", "200", "--model.channels", "4", "--model.embedding_dim", "8",
              "--train.channels", "4", "--search.epochs", "1",
              "--search.warmup_epochs", "0", "--train.epochs", "1", "--bench.orders", "[first]",
              "--bench.random_genotypes", "0", "--bench.baseline", "null", "--bench.families", "[recurrent]",
              "--bench.family_overrides.recurrent", "{model.nodes: 2, model.hidden_size: 6, model.global_pool: max}",
              "--bench.transfer", "null", "--search.selection", "alpha"]
    assert main(["bench", "p3b5", "--quick", "--runs", str(tmp_path), "--quiet", *shrink]) == 0
    assert "DARTS recurrent cell first order" in capsys.readouterr().out
    (bench,) = tmp_path.glob("bench-p3b5-*")
    table = pd.read_csv(bench / "results.csv", index_col="model")
    assert list(table.index) == ["majority class", "DARTS first order", "DARTS recurrent cell first order"]
    searches = sorted(bench.glob("search-*"), key=lambda d: json.loads((d / "run.json").read_text())["created"])
    assert {d.name for d in searches} == {"search-first-order-seed0", "search-recurrent-first-order-seed0"}
    families = {load_config(d / "config.yaml").model.family for d in searches}
    assert families == {"conv1d", "recurrent"}
    recurrent = next(d for d in searches if load_config(d / "config.yaml").model.family == "recurrent")
    assert json.loads((recurrent / "genotype.json").read_text())["family"] == "recurrent"
    assert load_config(recurrent / "config.yaml").model.nodes == 2


def test_an_unknown_further_family_or_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'model.node'"):
        load_config("p3b5-quick", ["--bench.families", "[recurrent]",
                                   "--bench.family_overrides.recurrent", "{model.node: 2}"]).for_family("recurrent")
    assert main(["bench", "p3b5", "--quick", "--runs", str(tmp_path), "--bench.families", "[recurent]"]) == 2
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_an_lr_grid_gives_each_row_the_rate_its_validation_prefers(tmp_path, capsys):
    shrink = ["--log.plots", "false", "--data.documents", "160", "--data.test_documents", "40",
              "--data.sequence_length", "24",
              "--data.vocab_size", "200", "--model.channels", "4", "--model.embedding_dim", "8", "--train.channels",
              "4", "--search.epochs", "1", "--search.warmup_epochs", "0", "--train.epochs", "2",
              "--bench.orders", "[first]", "--bench.transfer", "null", "--bench.baseline_filters", "8",
              "--bench.lr_grid", "[0.01, 0.2]", "--search.selection", "alpha"]
    assert main(["bench", "p3b5", "--quick", "--runs", str(tmp_path), "--quiet", *shrink]) == 0
    (bench,) = tmp_path.glob("bench-p3b5-*")
    table = pd.read_csv(bench / "results.csv", index_col="model")
    for model, stem in [("DARTS first order", "train-first-order-seed0"), ("random genotype", "train-random-1-seed0"),
                        ("textcnn (hand-designed)", "train-textcnn-seed0")]:
        finals = {}
        for lr in ("0.01", "0.2"):  # independent of the code's choice: read every tried run's final validation
            results = json.loads((bench / f"{stem}-lr{lr}" / "results.json").read_text())
            assert load_config(bench / f"{stem}-lr{lr}" / "config.yaml").train.lr == float(lr)
            finals[float(lr)] = results["final"]["val_accuracy"]
        best = max(finals, key=finals.get)
        assert table.loc[model, "train lr"] == best and table.loc[model, "run"].endswith(f"{stem}-lr{best:g}")
    assert "kept (validation" in (bench / "log.txt").read_text()


def test_an_lr_grid_needs_a_validation_split(tmp_path, capsys):
    assert main(["bench", "p3b5", "--quick", "--runs", str(tmp_path), "--bench.lr_grid", "[0.1]",
                 "--train.valid_fraction", "0"]) == 2
    assert "bench.lr_grid picks each row's learning rate on its validation split" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_a_regression_task_is_benchmarked_by_r2_against_the_mean_predictor(tmp_path, capsys):
    import numpy as np

    from darts.workflows import load_data

    shrink = ["--log.plots", "false", "--data.classes", "0", "--data.samples", "96", "--data.test_samples", "40",
              "--model.channels", "4", "--search.epochs", "1", "--search.warmup_epochs", "0", "--train.epochs", "1",
              "--bench.orders", "[first]", "--bench.random_genotypes", "2", "--bench.baseline", "null",
              "--bench.transfer", "null", "--search.selection", "alpha", "--search.min_steps_per_epoch", "0"]
    assert main(["bench", "p3b5", "--config", "planted-quick", "--runs", str(tmp_path), "--quiet", *shrink]) == 0
    out = capsys.readouterr().out
    (bench,) = tmp_path.glob("bench-*")
    table = pd.read_csv(bench / "results.csv", index_col="model")
    assert list(table.index) == ["mean predictor", "DARTS first order", "random genotype", "random genotype"]
    assert {"output R2", "output MSE", "mean R2", "mean MSE"} <= set(table.columns)
    assert not any(c.endswith("accuracy") for c in table.columns)
    # the floor, by hand: always the training targets' mean
    data = load_data(load_config("planted-quick", shrink))
    train_y, test_y = (np.array([float(split[i][1]) for i in range(len(split))]) for split in (data.train, data.test))
    error = ((test_y - train_y.mean()) ** 2).mean()
    assert table.loc["mean predictor", "output MSE"] == pytest.approx(error, abs=1e-4)
    assert table.loc["mean predictor", "mean R2"] == pytest.approx(1 - error / test_y.var(), abs=1e-4)
    results = json.loads((bench / "results.json").read_text())
    searched = json.loads((bench / "train-first-order-seed0" / "results.json").read_text())["test"]
    assert table.loc["DARTS first order", "mean R2"] == pytest.approx(searched["test_r2"], abs=1e-4)
    wins = int(table.loc["DARTS first order", "mean R2"] > table.loc["random genotype", "mean R2"].mean())
    assert results["wins_over_random"] == {"DARTS first order": f"{wins}/1"}
    assert "mean R2" in out and "mean MSE" in out and "wins over random" in out
    assert np.isfinite(table["mean R2"]).all()
