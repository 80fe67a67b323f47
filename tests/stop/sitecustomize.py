"""On PYTHONPATH in tests/test_resume.py's runs: a train process stops itself (SIGSTOP) just
after writing the checkpoint of step ``$LORA_SST2_TEST_STOP_AT``, so that the test signals it
there and not some steps later, however fast the CPU trains. Every other process is untouched.
"""

import importlib.abc
import importlib.machinery
import os
import signal
import sys

STOP_AT = os.environ.get("LORA_SST2_TEST_STOP_AT")


class _StopAfterSave(importlib.abc.MetaPathFinder):
    """Loads lora_core.checkpoint as usual, then wraps its ``save``."""

    def find_spec(self, name, path, target=None):
        if name != "lora_core.checkpoint":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            save = module.save

            def stopping(folder, snapshot, prints):
                save(folder, snapshot, prints)
                if snapshot.step == int(STOP_AT):
                    os.kill(os.getpid(), signal.SIGSTOP)

            module.save = stopping

        spec.loader.exec_module = exec_module
        return spec


if STOP_AT:
    sys.meta_path.insert(0, _StopAfterSave())
