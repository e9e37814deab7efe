"""A Hugging Face Trainer callback that submits a vog job when training ends.

    from hf_callback import VogSubmitCallback
    trainer = Trainer(model=model, args=TrainingArguments(output_dir="run-17",
                                                          save_strategy="epoch"),
                      callbacks=[VogSubmitCallback(out="s3://scores/run-17",
                                                   dataset=..., format="parquet",
                                                   example_input=torch.zeros(1, 3, 224, 224))])

The Trainer saves checkpoint-N/model.safetensors (or pytorch_model.bin);
vog reads the output folder's checkpoint-N/ folders in natural order. The
architecture is exported once as TorchScript by tracing the model itself on
an example input with config.torchscript set, so that it returns a tuple
whose first element is the logits (vog takes that), and its keys are the
checkpoints' own.
"""
import os

import torch
from transformers import TrainerCallback

from vog_submit import submit


class VogSubmitCallback(TrainerCallback):
    def __init__(self, out, dataset, format, example_input, extra=()):
        self.out, self.dataset, self.format = out, dataset, format
        self.example_input, self.extra = example_input, extra

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if not state.is_world_process_zero:
            return
        path = os.path.join(args.output_dir, "vog-model.pt")
        model.eval()
        torchscript = model.config.torchscript
        model.config.torchscript = True  # tuples out, as tracing needs
        try:
            torch.jit.trace(model, self.example_input.to(model.device), strict=False).save(path)
        finally:
            model.config.torchscript = torchscript
        job = submit(checkpoints=args.output_dir, model=path, out=self.out, dataset=self.dataset,
                     format=self.format, extra=list(self.extra))
        print(f"vog: submitted {job}")
