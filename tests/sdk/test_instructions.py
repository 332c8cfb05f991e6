"""The instruction set protocol generators yield is closed: one module, one base type, one union."""

from __future__ import annotations

from typing import get_args

import pytest

from dockyard import ContainerRegistryClient
from dockyard.protocol import instructions
from dockyard.protocol.instructions import BaseInstruction, Command, Emit, Instruction, Request


def test_every_instruction_is_in_the_closed_union() -> None:
    declared = {cls for cls in vars(instructions).values() if isinstance(cls, type) and cls is not BaseInstruction
                and issubclass(cls, BaseInstruction)}
    assert set(BaseInstruction.__subclasses__()) == declared
    assert set(get_args(Instruction)) == declared
    assert set(get_args(Command)) == declared - {Emit}


def test_a_driver_refuses_what_is_not_an_instruction() -> None:
    class Stray(BaseInstruction):
        pass

    def operation() -> instructions.Gen[None]:
        yield Stray()  # not in the closed set

    with ContainerRegistryClient("http://127.0.0.1:9") as client, pytest.raises(AssertionError):
        client._driver.run(operation())
    assert Request("GET", "http://x").replayable
