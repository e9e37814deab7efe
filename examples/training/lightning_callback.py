"""A Lightning callback that submits a vog job when training ends.

    import lightning.pytorch as pl           # or: import pytorch_lightning as pl
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning_callback import VogSubmit
    trainer = pl.Trainer(callbacks=[ModelCheckpoint(dirpath="ckpt", save_top_k=-1,
                                                    every_n_epochs=1),
                                    VogSubmit(out="s3://scores/run-17", dataset=...,
                                              format="imagefolder")])

At the end of fit it exports the module's architecture once as TorchScript
(next to the checkpoints, as vog-model.pt) and submits the checkpoint folder:
Lightning's .ckpt files hold the module's state_dict, whose keys are the
module's own, so no prefix is needed when the exported module is the
LightningModule itself (give state_dict_prefix="model." and export
`pl_module.model` instead if only the inner network is scriptable).

It works with Lightning 2.x (`pip install lightning`: lightning.pytorch) and
with the pytorch_lightning package (1.x, or 2.x installed under that name),
whichever is installed, preferring lightning.pytorch: a callback must be an
instance of the Callback class of the Lightning its Trainer comes from.
"""
import os

try:
    import lightning.pytorch as pl  # Lightning 2.x
except ImportError as lightning_missing:
    try:
        import pytorch_lightning as pl  # Lightning 1.x, or 2.x as pytorch-lightning
    except ImportError:
        raise ImportError("lightning_callback needs Lightning: pip install lightning "
                          f"(or pytorch-lightning); lightning.pytorch: {lightning_missing}") from None
import torch

from vog_submit import submit


class VogSubmit(pl.Callback):
    def __init__(self, out, dataset, format, extra=(), example_input=None):
        self.out, self.dataset, self.format, self.extra = out, dataset, format, extra
        self.example_input = example_input

    def on_fit_end(self, trainer, pl_module):
        if trainer.global_rank != 0:
            return
        ckpt_dir = trainer.checkpoint_callback.dirpath
        model = os.path.join(ckpt_dir, "vog-model.pt")
        pl_module.eval()
        if self.example_input is not None:
            torch.jit.trace(pl_module, self.example_input).save(model)
        else:
            torch.jit.script(pl_module).save(model)
        job = submit(checkpoints=ckpt_dir, model=model, out=self.out,
                     dataset=self.dataset, format=self.format, extra=self.extra)
        print(f"vog: submitted {job}")
