"""Zero-shot matrix rendering: in-domain cells marked."""

from __future__ import annotations

import pandas as pd

from adt.evaluation.zero_shot import matrix_markdown


def test_in_domain_cells_are_marked():
    cells = pd.DataFrame([
        {"train": "demo", "test": "demo", "in_domain": True, "f_3class": 0.8},
        {"train": "demo", "test": "mdb", "in_domain": False, "f_3class": 0.7},
        {"train": "demo+groove", "test": "demo", "in_domain": True, "f_3class": 0.75},
        {"train": "demo+groove", "test": "mdb", "in_domain": False, "f_3class": 0.72},
    ])
    md = matrix_markdown(cells, "f_3class")
    lines = md.splitlines()
    assert "demo" in lines[0] and "mdb" in lines[0]
    assert "0.800*" in lines[2] and "0.700" in lines[2] and "0.700*" not in lines[2]
    assert "0.750*" in lines[3] and "0.720*" not in lines[3]
