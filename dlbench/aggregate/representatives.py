"""representatives.csv: one representative run per dataset, method and setting, chosen as in the
ISA-VAE paper (appendix A.5): among the runs in the upper half of MIG, the one nearest in
Mahalanobis distance to their mean of (MIG, reconstruction).

- MIG is the column study_metric_column gives `mig` (the mean representation's discrete_mig, in
  the study's protocol where present, else the default protocol where present, else the protocol
  evaluated); reconstruction is recon_ll's value (chosen alike) where any finished run of the
  setting has it, else that of another protocol of recon_ll the setting's runs have (the default,
  else the one most of them have), else the training reconstruction of model/results.json
  (`train_result.reconstruction`, minus the log-likelihood per image, the loss term). The
  columns mig_column and reconstruction_column say which were used.
- The candidates are the finished runs (status 'done') of the setting that have both values; the
  upper half is those whose MIG is at or above the candidates' median MIG (as upper_half_mean of
  the leaderboard: for an odd count the median run is in).
- The distance of a run is sqrt(d' S^+ d), d its deviation from the upper half's mean and S^+ the
  Moore-Penrose pseudo-inverse of the upper half's sample covariance, computed on values
  standardised per column (which leaves the distance unchanged). Where S is invertible this is the
  Mahalanobis distance (distance_method 'mahalanobis'). Where it is singular (two runs, runs on one
  line, one value the same in every run) the pseudo-inverse measures along the directions in which
  the runs differ and ignores the others ('pseudo-inverse'); a single run, or runs that agree in
  both values, are at distance 0 ('single run', 'identical runs').
- Of runs at the same distance (within 1e-9; two runs are always equally far from their mean) the
  one with the higher MIG is chosen, then the first by run_dir.
A setting without a finished run that has both values has no row.
"""

import numpy as np
import pandas as pd

from dlbench.aggregate.columns import IDENTITY, resolve_metric_column, setting_columns, study_metric_column
from dlbench.aggregate.leaderboard import DONE, status_kind, upper_half

TRAIN_RECONSTRUCTION = "train_result.reconstruction"
RELATIVE_TIE = 1e-9
RANK_TOLERANCE = 1e-10  # eigenvalues of the standardised covariance below this count as zero
RESULT_COLUMNS = ["run_dir", "mig_column", "mig", "reconstruction_column", "reconstruction", "distance",
                  "distance_method", "num_upper_half", "num_candidates"]


def representatives(results, study=None):
    """representatives.csv as a DataFrame: dataset, method, the setting columns, then RESULT_COLUMNS.
    study: the runs root's study.json, whose protocols of mig and recon_ll are taken where present."""
    group = IDENTITY + setting_columns(results)
    mig = study_metric_column(results, study, "mig")
    recon_ll = study_metric_column(results, study, "recon_ll")
    rows = []
    if mig is not None:
        done = results[results["status"].map(status_kind) == DONE].sort_values("run_dir")
        for key, runs in done.groupby(group, dropna=False, sort=True):
            reconstruction = _reconstruction_column(runs, recon_ll)
            chosen = representative(runs, mig, reconstruction) if reconstruction else None
            if chosen:
                rows.append({**dict(zip(group, key)), **chosen})
    return pd.DataFrame(rows, columns=group + RESULT_COLUMNS)


def _reconstruction_column(runs, recon_ll):
    """The column of one setting's runs its reconstruction is read from: recon_ll (the column chosen
    for all settings) where a run has it, else another protocol of recon_ll that its runs have,
    else the training reconstruction. A setting whose runs had recon_ll in another protocol only
    had taken the training loss, another quantity (of the other sign) in the same CSV column."""
    if recon_ll is not None and runs[recon_ll].notna().any():
        return recon_ll
    own = resolve_metric_column(runs.dropna(axis="columns", how="all"), "recon_ll")
    if own is not None:
        return own
    return TRAIN_RECONSTRUCTION if TRAIN_RECONSTRUCTION in runs.columns else None


def representative(runs, mig, reconstruction):
    """{RESULT_COLUMNS: value} of the representative of `runs` (one setting's finished runs, sorted
    by run_dir), or None when none has both values."""
    candidates = runs[runs[mig].notna() & runs[reconstruction].notna()]
    if candidates.empty:
        return None
    upper = candidates[upper_half(candidates[mig].to_numpy(dtype=float))]
    points = upper[[mig, reconstruction]].to_numpy(dtype=float)
    distances, method = distances_to_mean(points)
    nearest = np.flatnonzero(distances <= distances.min() + RELATIVE_TIE * max(1.0, distances.min()))
    chosen = max(nearest, key=lambda i: points[i, 0])  # max keeps the first (by run_dir) of equal MIGs
    return {"run_dir": upper["run_dir"].iloc[chosen], "mig_column": mig, "mig": points[chosen, 0],
            "reconstruction_column": reconstruction, "reconstruction": points[chosen, 1],
            "distance": distances[chosen], "distance_method": method, "num_upper_half": len(upper),
            "num_candidates": len(candidates)}


def distances_to_mean(points):
    """(Mahalanobis distance of each row of points (n, d) to their mean, how it was computed), with
    the fallbacks of the module's docstring for a singular covariance."""
    if len(points) == 1:
        return np.zeros(1), "single run"
    deviations = points - points.mean(axis=0)
    scale = points.std(axis=0, ddof=1)
    varying = scale > 0
    if not varying.any():
        return np.zeros(len(points)), "identical runs"
    standardised = deviations[:, varying] / scale[varying]
    covariance = np.atleast_2d(np.cov(standardised, rowvar=False))
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    kept = eigenvalues > RANK_TOLERANCE * eigenvalues.max()
    projected = standardised @ eigenvectors[:, kept]
    distances = np.sqrt((projected ** 2 / eigenvalues[kept]).sum(axis=1))
    full_rank = kept.all() and varying.all()
    return distances, "mahalanobis" if full_rank else "pseudo-inverse"
