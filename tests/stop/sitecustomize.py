"""On PYTHONPATH in tests/test_resume.py's runs: a train process stops itself (SIGSTOP) just
after its ``$LORA_SST2_TEST_STOP_AFTER``-th optimizer step, so that the test signals it there,
between two checkpoints, and not some steps later, however fast the CPU trains. Every other
process is untouched.
"""

import importlib.abc
import importlib.machinery
import os
import signal
import sys

STOP_AFTER = os.environ.get("LORA_SST2_TEST_STOP_AFTER")


class _StopAfterStep(importlib.abc.MetaPathFinder):
    """Loads lora_core.step as usual, then wraps ``Step.__call__``."""

    def find_spec(self, name, path, target=None):
        if name != "lora_core.step":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            call, steps = module.Step.__call__, []

            def stepping(self, *args, **kwargs):
                loss = call(self, *args, **kwargs)
                steps.append(1)
                if len(steps) == int(STOP_AFTER):
                    os.kill(os.getpid(), signal.SIGSTOP)
                return loss

            module.Step.__call__ = stepping

        spec.loader.exec_module = exec_module
        return spec


if STOP_AFTER:
    sys.meta_path.insert(0, _StopAfterStep())
