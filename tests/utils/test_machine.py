"""The machine description shared by bench, demo and the autoencoder commands (``utils/machine.py``)."""

from __future__ import annotations

import json

import torch

from latentscenes.utils.machine import machine_brief, machine_info, machine_line


def test_machine_info_is_json_and_complete():
    info = machine_info(torch.device("cpu"))
    json.dumps(info)
    assert info["cpu_model"] and info["logical_cores"] >= 1 and info["torch_threads"] >= 1
    assert info["versions"]["torch"]
    assert info["device"] == "cpu"


def test_the_short_forms_agree_with_the_full_description():
    info, brief = machine_info(), machine_brief()
    assert set(brief) - {"gpu"} == {"cpu", "torch_threads", "torch", "python"}
    assert brief["cpu"] == info["cpu_model"] and brief["python"] == info["python"]
    assert brief["torch"] == torch.__version__ and brief["torch_threads"] == info["torch_threads"]
    line = machine_line()
    assert line.startswith(f"{brief['cpu']}, {info['usable_cores']} cores available, torch {torch.__version__} (")
