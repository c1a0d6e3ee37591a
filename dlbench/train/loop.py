"""The training loop: the dataset on the device as uint8, batches drawn there, scalars
accumulated there and read back only at log steps (no host synchronisation every step).

The scalars are summed in float64: float32 sums of finite losses near float32's largest number (a
beta of 1e38) overflowed, and a run whose every step was finite had logged inf."""

import time

import numpy as np
import torch

from dlbench.methods.base import checked_objective
from dlbench.nn import VAE
from dlbench.train import checkpoints
from dlbench.train.device import tf32


class NonFiniteLoss(Exception):
    """The loss became NaN or infinite; `step` is the update at which it first did."""

    def __init__(self, step):
        super().__init__(f"the loss became non-finite at step {step}")
        self.step = step


def open_window(log_window):
    """(names, sums, steps) of a log window a checkpoint kept open, or of a new one."""
    if log_window is None:
        return None, None, 0
    return log_window["names"], log_window["sums"], log_window["steps"]


# model/results.json's training scalars are their means over the run's last RESULT_STEPS steps (all
# of them in a shorter run): a count of its own, so that log_every, which closes the log's windows,
# does not change a result. It is the default log_every: where steps are a multiple of it, the
# results repeat the last log row.
RESULT_STEPS = 100


def grown_window(window, names, values):
    """A window of step sums ({"names", "sums", "steps"}, or None for an empty one) with one more
    step's values added."""
    if window is None:
        return {"names": names, "sums": values, "steps": 1}
    return {"names": names, "sums": window["sums"] + values, "steps": window["steps"] + 1}


def window_means(window):
    """{name: mean} over a window's steps ({} for an empty one); for a stack's windows of (K,
    scalars) sums, use a run's row."""
    if window is None:
        return {}
    return dict(zip(window["names"], (window["sums"] / window["steps"]).tolist()))


def shares_memory(tensor, array):
    """Whether a tensor is a view of a numpy array's memory (torch.as_tensor of a CPU array is)."""
    return tensor.device.type == "cpu" and np.shares_memory(tensor.numpy(), np.asarray(array))


def build_model(spec, data):
    """The run's VAE; priors initialised from data (PCA) see the dataset here."""
    model = VAE(spec.model["architecture"], data.observation_shape, spec.model["latent_dim"],
                spec.model["likelihood"], spec.model.get("prior"))
    model.prior.prepare(data)
    return model


def build_optimizer(spec, model):
    t = spec.train
    return torch.optim.Adam(model.parameters(), lr=t["lr"], betas=tuple(t["adam_betas"]), eps=t["adam_eps"])


def device_images(data, device):
    """(images, finish_batch): the dataset's images on the device as stored (uint8), and for
    datasets whose observations are random given the image (the dSprites variants) the function
    that finishes a batch of their fixed part on the device (else None). The device copy is made
    once per dataset object and device and shared by the runs that use it (a study's worker
    keeps its dataset loaded: dlbench.data.keep_loaded); the host copy is then released, so the
    process holds the data once. Each run draws its own indices into it."""
    finish_batch = getattr(data, "observations_from_base", None)
    copies = data.__dict__.setdefault("_device_copies", {})
    key = str(torch.device(device))
    if key not in copies:
        host = data.base_images if finish_batch else data.images
        copies[key] = torch.as_tensor(host).to(device)
        if not shares_memory(copies[key], host):
            data.release_images()
    return copies[key], finish_batch


def autocast(spec, device):
    """The context of a step's forward pass and objective: torch.autocast in bfloat16 where
    train.precision asks for it, else nothing."""
    enabled = spec.train.get("precision", "float32") == "bfloat16"
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=enabled)


def float32_arithmetic(spec):
    """The context of a whole training loop, backward passes included: a GPU's float32 convolutions
    and matrix products in TF32 where train.precision is 'tf32', else in IEEE float32 (torch's own
    default would run the convolutions of a 'float32' run in TF32)."""
    return tf32(spec.train.get("precision", "float32") == "tf32")


def compiled(fn, spec, device):
    """fn compiled with torch.compile where train.compile asks for it (with CUDA graphs on a GPU,
    where a step's shapes never change), else fn itself."""
    if not spec.train.get("compile", False):
        return fn
    mode = "reduce-overhead" if torch.device(device).type == "cuda" else "default"
    return torch.compile(fn, mode=mode)


class Trainer:
    """One run's model, optimiser and random state, from scratch or from a checkpoint."""

    def __init__(self, spec, data, device):
        self.spec, self.device = spec, device
        seed = spec.train["seed"]
        self.method = spec.method
        # Initial weights (the model's, and those of auxiliary networks, built in method.prepare
        # below) are a function of the run's seed alone: drawn in a forked RNG seeded here, so
        # neither what the process drew before nor other runs built in it change them, and the
        # process's own RNG is left as it was (torch.manual_seed seeds a GPU's too: its state is
        # kept and put back as well).
        with torch.random.fork_rng(devices=[device] if torch.device(device).type == "cuda" else []):
            torch.manual_seed(seed)
            self.model = build_model(spec, data).to(device)
            self.images, self.finish_batch = device_images(data, device)
            self.method.prepare(self.model, len(self.images))
        self.dtype = next(self.model.parameters()).dtype
        self.forward = compiled(self.model, spec, device)  # the module itself: state dicts keep their keys
        self.optimizer = build_optimizer(spec, self.model)
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)
        self.pixel_scale = float(data.pixel_scale)
        self.step = 0
        # the steps since the last log step: {"names", "sums" (on the device), "steps"}, or None. Kept
        # in checkpoints, so that the first log row after a resume averages the steps an
        # uninterrupted run's would (it had averaged only those after the resume)
        self.log_window = None
        # the sums of the run's last RESULT_STEPS steps (so far), for model/results.json; kept in
        # checkpoints as the log window is
        self.result_window = None

    def shown_images(self, num=64, seed=0):
        """(images, pixel_scale) for the sample figures, taken from the trainer's copy: all of
        them, or for datasets finished per batch (the dSprites variants) `num` observations drawn
        with `seed`, independently of the training generator."""
        if not self.finish_batch:
            return self.images, self.pixel_scale
        index = torch.randint(len(self.images), (num,), generator=torch.Generator().manual_seed(seed))
        masks = self.images.index_select(0, index.to(self.device)).to(torch.float32).mul_(self.pixel_scale)
        return self.finish_batch(masks, torch.Generator(device=self.device).manual_seed(seed)), 1.0

    def state_dict(self):
        return {"step": self.step, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "method": self.method.state_dict(), "generator": self.generator.get_state(),
                "model_config": self.model.config, "log_window": self.log_window, "result_window": self.result_window}

    def load_state_dict(self, state):
        checkpoints.require_model(self.spec.model, state)
        self.step = int(state["step"])
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.method.load_state_dict(state["method"])
        self.generator.set_state(state["generator"].cpu())
        window = state.get("log_window")  # none in checkpoints written before it was kept
        self.log_window = window and {**window, "sums": window["sums"].to(self.device)}
        window = state.get("result_window")  # none in checkpoints written before it was kept
        self.result_window = window and {**window, "sums": window["sums"].to(self.device)}

    def sample_batch(self, batch_size):
        batch = self.images_at(self.sample_indices(batch_size))
        return self.finish_batch(batch, self.generator) if self.finish_batch else batch

    def sample_indices(self, batch_size):
        """A batch's indices into the images, from the run's generator."""
        return torch.randint(len(self.images), (batch_size,), generator=self.generator, device=self.device)

    def images_at(self, index):
        """The images at index (a tensor of any shape), as observations: shape index.shape + image."""
        # in the model's dtype: float32, or float64 where a test needs arithmetic without rounding
        flat = self.images.index_select(0, index.reshape(-1)).to(self.dtype).mul_(self.pixel_scale)
        return flat.view(*index.shape, *self.images.shape[1:])

    def sample_noise(self, batch_size, dtype):
        """The encoder's standard normal noise for a batch, from the run's generator."""
        return torch.randn((batch_size, self.model.prior.latent_dim), generator=self.generator, device=self.device,
                           dtype=dtype)

    def run(self, until, log_every, on_log, after_step=None):
        """Train up to step `until`, calling on_log(step, means, images_per_second) at each log
        step and after_step(step) after every update; training stops early when after_step returns
        True (an interruption). Raises NonFiniteLoss."""
        with float32_arithmetic(self.spec):
            self._train(until, log_every, on_log, after_step)

    def _train(self, until, log_every, on_log, after_step):
        self.model.train()
        batch_size = self.spec.train["batch_size"]
        names, sums, window = open_window(self.log_window)
        timed = 0  # the window's steps in this session: the rate is over these
        first_bad = torch.tensor(-1, device=self.device)
        tick = time.perf_counter()
        while self.step < until:
            with autocast(self.spec, self.device):
                x = self.sample_batch(batch_size)
                # the noise drawn here rather than in the model (the same numbers): a compiled
                # forward pass is then one graph, and runs in a stack draw it the same way
                eps = self.sample_noise(batch_size, x.dtype)
                outputs = self.forward(x, eps=eps)
                draws = self.method.draw(self.model, batch_size, self.generator)
                loss, scalars = checked_objective(self.method, self.method.objective(outputs, self.step, draws))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            scalars.update(self.method.after_step(self.model, outputs, lambda: self.sample_batch(batch_size),
                                                  self.generator))
            self.step += 1
            # float64: the module's docstring says why
            values = torch.stack([v.detach().double() for v in scalars.values()])
            names = names or list(scalars)
            sums = values if sums is None else sums + values
            window, timed = window + 1, timed + 1
            self.log_window = {"names": names, "sums": sums, "steps": window}
            if self.step > self.spec.train["steps"] - RESULT_STEPS:
                self.result_window = grown_window(self.result_window, names, values)
            # the step as a Python number: a tensor made from it would be copied to the device,
            # which waits for the device (a synchronisation every step)
            first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss.detach()), self.step, first_bad)
            if self.step % log_every == 0 or self.step == until:
                if int(first_bad) >= 0:
                    raise NonFiniteLoss(int(first_bad))
                elapsed = time.perf_counter() - tick
                on_log(self.step, dict(zip(names, (sums / window).tolist())), timed * batch_size / elapsed)
                sums, window, timed, tick, self.log_window = None, 0, 0, time.perf_counter(), None
            if after_step is not None and after_step(self.step):
                if int(first_bad) >= 0:  # never hand back (and checkpoint) weights that went non-finite
                    raise NonFiniteLoss(int(first_bad))
                return
