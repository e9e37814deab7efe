"""Submit a vog job from the last line of a training script.

    from vog_submit import submit
    ...
    train()                        # saves checkpoints into CKPT_DIR
    submit(checkpoints=CKPT_DIR, model="model.pt", out=f"s3://scores/{run_name}",
           dataset="/data/imagenet/train", format="imagefolder",
           extra=["--resize", "256", "--crop", "224",
                  "--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225"])

It runs `vog submit` against $TEMPORAL_ADDRESS (workers score the job on
their machines; the script does not wait), and returns the job's id.
Submitting the same run twice is harmless: the job's id is the fingerprint of
what it computes, so a second submit attaches to the running job, or, once it
is done, reruns it reusing every shard (nothing is computed again).

`model` is a TorchScript module of the architecture, exported once
(torch.jit.script(net).save("model.pt") or torch.jit.trace); the checkpoints
may then be state dicts as training saves them (torch.save(net.state_dict())),
Lightning .ckpt files (with state_dict_prefix="model." when the network is the
LightningModule's `model` attribute), safetensors files, or a Hugging Face
Trainer output folder of checkpoint-N/ folders.

When vog refuses the job (a flag, a checkpoint, an --out holding another job)
or cannot reach the server, submit raises VogError, whose message is vog's
own (its stderr); it is a subprocess.CalledProcessError, so code that caught
that still does.
"""
import os
import shutil
import subprocess


class VogError(subprocess.CalledProcessError):
    """`vog submit` failed: str() is vog's own message, not only its exit status."""

    def __str__(self):
        said = (self.stderr or self.stdout or "").strip()
        status = f"exit status {self.returncode}"
        return f"vog submit failed ({status}): {said}" if said else f"vog submit failed ({status}), saying nothing"


def submit(checkpoints, out, dataset, format, model=None, state_dict_prefix=None,
           temporal=None, extra=(), vog=None):
    vog = vog or os.environ.get("VOG_BIN") or shutil.which("vog") or "vog"
    args = [vog, "submit", "--format", format, "--dataset", dataset,
            "--checkpoints", checkpoints, "--out", out]
    if temporal or os.environ.get("TEMPORAL_ADDRESS"):
        args += ["--temporal", temporal or os.environ["TEMPORAL_ADDRESS"]]
    if model:
        args += ["--model", model]
    if state_dict_prefix:
        args += ["--state-dict-prefix", state_dict_prefix]
    args += list(extra)
    try:
        done = subprocess.run(args, capture_output=True, text=True)
    except FileNotFoundError as e:
        raise FileNotFoundError(e.errno, f"vog not found ({vog}): set $VOG_BIN, or put vog on $PATH", vog) from None
    if done.returncode != 0:
        raise VogError(done.returncode, args, done.stdout, done.stderr)
    return done.stdout.strip()
