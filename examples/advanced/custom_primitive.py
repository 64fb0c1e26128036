"""Your own primitives, registered in-process, searched beside built-in ones on real data (8x8 digits).

    python examples/advanced/custom_primitive.py            # quick: 100 s on one thread of a 2-core AMD EPYC
    python examples/advanced/custom_primitive.py --search.epochs 10 --train.epochs 30

The primitives live in the plugin package next to this script (darts_gated/). Here they are registered
with darts.register_primitive, as a notebook would; `pip install examples/advanced/darts_gated` publishes
the same ones through the `darts` entry point instead, with no registration code at all.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).parent / "darts_gated"))
from darts_gated.primitives import PRIMITIVES  # noqa: E402

from darts import get_registry, register_primitive  # noqa: E402
from darts.config import load_config, parse_overrides  # noqa: E402
from darts.runs import new_run_dir  # noqa: E402
from darts.workflows import load_data, search, train  # noqa: E402

SPACE = ["none", "max_pool_3", "skip_connect", "sep_conv_3", "gated_conv_3", "se_conv_3"]


def register_in_process() -> None:
    """Register the package's primitives unless the installed plugin already brought them."""
    registry = get_registry()
    for family, name, factory, description in PRIMITIVES:
        if any(p.name == name for p in registry.primitives(family)):
            print(f"{family}/{name}: already there (the darts-gated plugin is installed)")
            continue
        register_primitive(family, name, description=description)(factory)
        registry = get_registry()
    print("conv2d primitives now:", ", ".join(p.name for p in get_registry().primitives("conv2d")))


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog="Other options: any config key "
                                     "as --section.key VALUE (see 'darts search --help').")
    parser.add_argument("--runs", default="runs", help="folder for the run directories (default: runs)")
    args, extra = parser.parse_known_args(argv)
    register_in_process()
    config = load_config("digits-quick", {"model.primitives": SPACE, **parse_overrides(extra)})
    root = new_run_dir(args.runs, "advanced-example")
    searched = search(config, root, quiet=True)
    genotype = json.loads((searched / "genotype.json").read_text())
    used = sorted({gene[0] for cell in genotype["cells"].values() for node in cell["nodes"] for gene in node})
    trained = train(config, searched / "genotype.json", root, quiet=True)
    test = json.loads((trained / "results.json").read_text())["test"]

    data = load_data(config)  # the same split, for a plain baseline on the raw pixels
    x_train = np.stack([data.train[i][0].numpy().ravel() for i in range(len(data.train))])
    y_train = np.array([int(data.train[i][1]) for i in range(len(data.train))])
    x_test = np.stack([data.test[i][0].numpy().ravel() for i in range(len(data.test))])
    y_test = np.array([int(data.test[i][1]) for i in range(len(data.test))])
    logistic = LogisticRegression(max_iter=2000).fit(x_train, y_train).score(x_test, y_test)
    majority = float((y_test == np.bincount(y_train).argmax()).mean())

    print(f"\nsearched over {', '.join(SPACE)}; the genotype uses {', '.join(used)}")
    print(f"{'model (digits test split, ' + str(len(y_test)) + ' images)':<52}{'accuracy':>10}")
    print(f"{'searched network, trained from scratch':<52}{test['test_accuracy']:>10.4f}")
    print(f"{'logistic regression on the pixels (scikit-learn)':<52}{logistic:>10.4f}")
    print(f"{'majority class':<52}{majority:>10.4f}")
    print(f"\nruns: {root}")
    return {"searched": test["test_accuracy"], "logistic": logistic, "majority": majority}


if __name__ == "__main__":
    main()
