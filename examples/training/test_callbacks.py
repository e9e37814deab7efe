"""Tests of vog_submit and the Lightning callback that need no Lightning:
stub lightning.pytorch and pytorch_lightning modules are put in
sys.modules, and a vog that fails shows its message. vog's Go test
(cmd/vog/training_test.go) runs it with $VOG_BIN set; by hand:

    VOG_BIN=build/vog python3 -m unittest examples/training/test_callbacks.py
"""
import importlib
import os
import subprocess
import sys
import tempfile
import types
import unittest
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import vog_submit  # noqa: E402

try:
    import torch
except ImportError:
    torch = None


def stub_lightning(name):
    """A module standing in for a Lightning package's pytorch module: it has
    the Callback class a callback derives from, and says which it is."""
    m = types.ModuleType(name)
    m.Callback = type("Callback", (), {"which": name})
    return m


def import_callback(modules):
    """Imports lightning_callback afresh with sys.modules patched by
    modules: a name mapped to None cannot be imported."""
    sys.modules.pop("lightning_callback", None)
    if torch is None:
        modules = {"torch": types.ModuleType("torch"), **modules}
    with mock.patch.dict(sys.modules, modules):
        try:
            return importlib.import_module("lightning_callback")
        finally:
            sys.modules.pop("lightning_callback", None)


class LightningImport(unittest.TestCase):
    def test_prefers_lightning_2(self):
        pkg = types.ModuleType("lightning")
        pkg.pytorch = stub_lightning("lightning.pytorch")
        m = import_callback({"lightning": pkg, "lightning.pytorch": pkg.pytorch,
                             "pytorch_lightning": stub_lightning("pytorch_lightning")})
        self.assertEqual(m.pl.__name__, "lightning.pytorch")
        self.assertEqual(m.VogSubmit.which, "lightning.pytorch")

    def test_falls_back_to_pytorch_lightning(self):
        m = import_callback({"lightning": None, "lightning.pytorch": None,
                             "pytorch_lightning": stub_lightning("pytorch_lightning")})
        self.assertEqual(m.pl.__name__, "pytorch_lightning")
        self.assertTrue(issubclass(m.VogSubmit, m.pl.Callback))

    def test_neither(self):
        with self.assertRaises(ImportError) as e:
            import_callback({"lightning": None, "lightning.pytorch": None, "pytorch_lightning": None})
        self.assertIn("pip install lightning", str(e.exception))


def vog_bin():
    vog = os.environ.get("VOG_BIN")
    if not vog:
        raise unittest.SkipTest("$VOG_BIN is not set")
    return vog


class SubmitErrors(unittest.TestCase):
    def test_vog_message(self):
        # A job vog refuses before it dials the server: an unknown format.
        with self.assertRaises(vog_submit.VogError) as e:
            vog_submit.submit(checkpoints="ckpt", out="out", dataset="data", format="bogus",
                              temporal="127.0.0.1:1", vog=vog_bin())
        err = e.exception
        self.assertIsInstance(err, subprocess.CalledProcessError)  # what callers caught before
        self.assertNotEqual(err.returncode, 0)
        self.assertIn("bogus", err.stderr)
        self.assertIn("vog submit failed", str(err))
        self.assertIn(err.stderr.strip(), str(err))  # vog's own words

    def test_vog_missing(self):
        with self.assertRaises(FileNotFoundError) as e:
            vog_submit.submit(checkpoints="c", out="o", dataset="d", format="idx",
                              vog=os.path.join(tempfile.gettempdir(), "no-such-vog"))
        self.assertIn("VOG_BIN", str(e.exception))


@unittest.skipIf(torch is None, "no torch")
class CallbackSubmits(unittest.TestCase):
    """on_fit_end exports the module and submits the checkpoint folder, and
    a refusal surfaces as vog's message."""

    def fit_end(self, vog):
        pkg = types.ModuleType("lightning")
        pkg.pytorch = stub_lightning("lightning.pytorch")
        m = import_callback({"lightning": pkg, "lightning.pytorch": pkg.pytorch})
        ckpt = tempfile.mkdtemp()
        trainer = types.SimpleNamespace(global_rank=0, checkpoint_callback=types.SimpleNamespace(dirpath=ckpt))
        cb = m.VogSubmit(out=os.path.join(ckpt, "scores"), dataset="data", format="idx")
        with mock.patch.dict(os.environ, {"VOG_BIN": vog, "TEMPORAL_ADDRESS": ""}):
            cb.on_fit_end(trainer, torch.nn.Linear(4, 3))
        return ckpt

    def test_submits(self):
        # A vog that prints what it was asked and a job id.
        fake = os.path.join(tempfile.mkdtemp(), "vog")
        with open(fake, "w") as f:
            f.write('#!/bin/sh\necho "$@" > "$(dirname "$0")/args"\necho vog-0123\n')
        os.chmod(fake, 0o755)
        ckpt = self.fit_end(fake)
        self.assertTrue(os.path.exists(os.path.join(ckpt, "vog-model.pt")))
        with open(os.path.join(os.path.dirname(fake), "args")) as f:
            args = f.read().split()
        self.assertEqual(args[0], "submit")
        self.assertIn("--model", args)
        self.assertEqual(args[args.index("--checkpoints") + 1], ckpt)

    def test_refused(self):
        # The real vog refuses: the checkpoint folder holds no checkpoints.
        with self.assertRaises(vog_submit.VogError) as e:
            self.fit_end(vog_bin())
        self.assertIn("--temporal", e.exception.stderr)  # no server: vog says how to name one
        self.assertIn(e.exception.stderr.strip(), str(e.exception))


if __name__ == "__main__":
    unittest.main()
