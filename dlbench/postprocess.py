"""Representation extraction: a trained encoder saved as a TorchScript module that maps a
float batch of observations (n, C, H, W) in [0, 1] to codes (n, D).

Modes: `mean` (the encoder mean, the representation disentanglement_lib evaluates) and
`sampled` (one draw from q(z|x) per call; the evaluation stage draws its noise itself, see
SampledCodes).
"""

import io
import time
import warnings

import torch
from torch import nn

import dlbench
from dlbench import rundir
from dlbench.data.files import file_checksum
from dlbench.errors import CorruptFile, UserError, shell_word
from dlbench.metrics import WEIGHTS_DIGEST
from dlbench.train import load_trained_model

MODES = ("mean", "sampled")


class MeanRepresentation(nn.Module):
    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, x):
        return self.encoder(x)[0]


class SampledRepresentation(nn.Module):
    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, x):
        mean, logvar = self.encoder(x)
        return mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)


REPRESENTATIONS = {"mean": MeanRepresentation, "sampled": SampledRepresentation}


def check_mode(mode):
    if mode not in MODES:
        raise UserError(f"unknown postprocess mode '{mode}'; available: {', '.join(MODES)}")


def postprocess(run_dir, mode="mean", overwrite=False, digest=None):
    """Write RUN_DIR/postprocessed/<mode>/{representation.pt, results.json}; skip if complete and
    of the run's weights. digest: their weights_digest, where the caller has it already."""
    check_mode(mode)
    rundir.require_finished_run(run_dir)
    out = rundir.postprocessed_dir(run_dir, mode)
    representation, results = rundir.representation_path(run_dir, mode), rundir.postprocess_results_path(run_dir, mode)
    digest = digest or weights_digest(run_dir)  # what the representation is made from, read once
    if results.is_file() and representation.is_file() and not overwrite:
        try:
            load_representation(run_dir, mode)
            made = rundir.read_json(results)  # the mark of a complete representation: a damaged one marks nothing
            if not of_other_weights(made, run_dir, digest):
                return out
            print(f"{run_dir}: {representation} was made from other weights than {rundir.weights_path(run_dir)} "
                  f"holds now; writing it again")
        except CorruptFile as err:  # derived from the weights: made again rather than refused
            print(f"{run_dir}: {err.path} does not load ({err.__cause__ or 'damaged'}); writing it again")
    with rundir.hold_run(run_dir, "postprocessed"):
        created = rundir.make_folders(out)
        try:
            _write_representation(run_dir, mode, representation, results, digest)
        except BaseException:  # a full disk, a stop: no empty folders left behind
            if created:
                rundir.remove_empty_folders(out, created)
            raise
    return out


def weights_digest(run_dir):
    """The sha256 of the run's final weights, which its representation and metric results are
    computed from; None while the file is missing (the command that needs it says so)."""
    path = rundir.weights_path(run_dir)
    return file_checksum(path, "sha256") if path.is_file() else None


def of_other_weights(stored, run_dir, digest=None):
    """Whether a stored representation's or metric result's record was computed from other weights
    than the run holds now (a checkpoint copied in by hand had kept them, --overwrite included).
    One written before the weights' digest was recorded, or a run whose weights are missing, is
    taken as it is. digest: the run's weights_digest, where known."""
    recorded = stored.get(WEIGHTS_DIGEST) if isinstance(stored, dict) else None
    if recorded is None:
        return False
    digest = digest or weights_digest(run_dir)
    return digest is not None and recorded != digest


def _write_representation(run_dir, mode, representation, results, digest):
    """representation.pt, then results.json: last, it marks the representation complete. digest:
    the weights' (weights_digest), read before the model is."""
    tick = time.perf_counter()
    model = load_trained_model(run_dir, "cpu")
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is the contract here
        torch.jit.save(torch.jit.script(REPRESENTATIONS[mode](model.encoder)), buffer)
    rundir.atomic_write_bytes(representation, buffer.getvalue())
    rundir.write_json(results, {
        "mode": mode, "representation_dim": model.config["latent_dim"],
        "observation_shape": model.config["observation_shape"], "file": representation.name,
        "elapsed_seconds": time.perf_counter() - tick, "dlbench_version": dlbench.__version__, WEIGHTS_DIGEST: digest})


def load_representation(run_dir, mode="mean", device="cpu"):
    """The TorchScript representation module of a postprocessed run; a CorruptFile when it does not
    load (truncated, or not a TorchScript module)."""
    path = rundir.representation_path(run_dir, mode)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return torch.jit.load(str(path), map_location=device)
        except (RuntimeError, ValueError, OSError) as err:
            if isinstance(err, (FileNotFoundError, torch.cuda.OutOfMemoryError)):  # the second: the GPU's state
                raise
            again = f"dlb_postprocess {shell_word(run_dir)} --mode {mode} --overwrite"
            raise CorruptFile(path, f"not a TorchScript module: {type(err).__name__}",
                              f"write it again with `{again}`") from None


def encode_batch_size(device):
    """Observations per forward pass when encoding for metrics: large batches fill a GPU, while on
    a CPU the conv encoder runs about 3x faster at 64 than at 1024 (cache-sized activations)."""
    return 64 if torch.device(device).type == "cpu" else 4096


def numpy_representation_fn(module, device, batch_size=None):
    """Wrap a torch module as representation_fn: numpy observations -> numpy codes, batched on device."""
    import numpy as np

    batch_size = batch_size or encode_batch_size(device)

    @torch.no_grad()
    def representation_fn(observations):
        codes = []
        for start in range(0, len(observations), batch_size):
            x = torch.as_tensor(observations[start:start + batch_size], device=device, dtype=torch.float32)
            codes.append(module(x).cpu().numpy())
        return np.concatenate(codes) if codes else np.zeros((0, 0), np.float32)

    return representation_fn


# observations per block of the sampled representation's noise (SampledCodes): one generator per block
NOISE_BLOCK = 1024
# what a sampled result records of its noise: one stored without it drew it call by call, and its
# value depended on the metric's batch_size, so it is computed again rather than reused
SAMPLED_NOISE = f"per observation from the seed, in blocks of {NOISE_BLOCK}"


class SampledCodes:
    """The sampled representation as the metrics' representation_fn: numpy observations -> codes
    mean + exp(logvar / 2) * eps from the module's encoder, where the eps of the i-th observation
    encoded since restart(seed) is row i % NOISE_BLOCK of a block drawn for (seed, i // NOISE_BLOCK).
    The module's own draws come from torch's global generator call by call, and a call's draws
    depend on its size: a metric's batch_size, which only chunks the encoding and is no protocol,
    changed the codes and the result. These depend on the seed and the observation's place alone
    (and are drawn on the CPU, so not on the device either)."""

    def __init__(self, module, device, batch_size=None):
        self.encoder, self.device = module.encoder, device
        self.batch_size = batch_size or encode_batch_size(device)
        self.restart(0)

    def restart(self, seed):
        """The next observation is the first of seed's noise stream (each metric starts afresh)."""
        self.seed, self.position, self.block = seed, 0, (None, None)

    def _noise(self, count, dim):
        import numpy as np

        rows, end = [], self.position + count
        while self.position < end:
            index, offset = divmod(self.position, NOISE_BLOCK)
            if self.block[0] != index:  # kept: a metric calling with a few observations at a time draws it once
                generator = np.random.default_rng([self.seed, index])
                self.block = (index, generator.standard_normal((NOISE_BLOCK, dim), dtype=np.float32))
            take = min(end - self.position, NOISE_BLOCK - offset)
            rows.append(self.block[1][offset:offset + take])
            self.position += take
        return np.concatenate(rows)

    @torch.no_grad()
    def __call__(self, observations):
        import numpy as np

        codes = []
        for start in range(0, len(observations), self.batch_size):
            x = torch.as_tensor(observations[start:start + self.batch_size], device=self.device, dtype=torch.float32)
            mean, logvar = self.encoder(x)
            eps = torch.as_tensor(self._noise(len(x), mean.shape[1]), device=self.device)
            codes.append((mean + torch.exp(0.5 * logvar) * eps).cpu().numpy())  # SampledRepresentation's formula
        return np.concatenate(codes) if codes else np.zeros((0, 0), np.float32)


def metrics_representation_fn(module, mode, device):
    """The representation_fn the metrics get for a run's representation module of `mode`."""
    return SampledCodes(module, device) if mode == "sampled" else numpy_representation_fn(module, device)
