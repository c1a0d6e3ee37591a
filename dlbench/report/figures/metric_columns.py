"""Which metric columns the study figures show, and how an axis names them.

A metric column of results.csv is `[<mode>.]<metric>[<protocol tag>].<key>`, e.g.
`mig.discrete_mig`, `factor_vae[num_train=1000].eval_accuracy`, `sampled.mig.discrete_mig`; the
leaderboard adds `.mean`, `.sem`, ... to it.

Scores: of a metric's keys, the ones that measure something (SCORES below): not their standard
errors, counts, parameters or per-dimension splits. The correlation heatmap shows every score
column.

Headline: the score each metric is known by (the one `dlb_aggregate --rank_by METRIC` ranks
by: dlbench.aggregate.columns.HEADLINE_KEYS, else the first of SCORES), on the mean
representation (the one disentanglement_lib evaluates), one column per protocol: the MIG (`mig`,
`mig_chen`), the FactorVAE score (eval_accuracy), the reconstruction log-likelihood, then whatever
else the study evaluated (beta-VAE score, SAP, DCI disentanglement, modularity, ..., total
correlation, ELBO). The seed distributions and the strength curves show the headline columns;
the sampled representation's scores appear in the heatmap and, headline per protocol, in the
report's leaderboard table after the mean representation's.

Only metrics of dlbench's registry count. One registered after SCORES was written still appears:
its numeric keys but standard errors and counts are scores, named by their column, without a unit.
"""

import re
import textwrap
from dataclasses import dataclass

from dlbench.aggregate import parse_metric_column
from dlbench.aggregate.columns import HEADLINE_KEYS
from dlbench.metrics import METRICS

# {metric: {key: (name, unit)}}, each metric's headline score first. Units are those of the metric
# modules: MIG is a mutual information divided by an entropy (both in nats), so a number in [0, 1].
SCORES = {
    "mig": {"discrete_mig": ("MIG", "normalised by factor entropy, 0-1")},
    "mig_chen": {"mig_chen": ("MIG, Chen et al.'s estimator", "normalised by factor entropy, 0-1")},
    "factor_vae": {"eval_accuracy": ("FactorVAE score", "held-out vote accuracy, 0-1"),
                   "train_accuracy": ("FactorVAE score, training votes", "accuracy, 0-1")},
    "recon_ll": {"recon_ll": ("reconstruction log-likelihood", "nats per observation")},
    "beta_vae": {"eval_accuracy": ("beta-VAE score", "held-out accuracy, 0-1"),
                 "train_accuracy": ("beta-VAE score, training points", "accuracy, 0-1")},
    "sap": {"SAP_score": ("SAP score", "0-1")},
    "dci": {"disentanglement": ("DCI disentanglement", "0-1"),
            "completeness": ("DCI completeness", "0-1"),
            "informativeness_test": ("DCI informativeness", "held-out accuracy, 0-1"),
            "informativeness_train": ("DCI informativeness, training points", "accuracy, 0-1")},
    "modularity_explicitness": {"modularity_score": ("modularity", "0-1"),
                                "explicitness_score_test": ("explicitness", "held-out ROC-AUC, 0-1"),
                                "explicitness_score_train": ("explicitness, training points", "ROC-AUC, 0-1")},
    "unsupervised": {"gaussian_total_correlation": ("Gaussian total correlation of the codes", "nats"),
                     "gaussian_wasserstein_correlation": ("Gaussian Wasserstein correlation", "code variance"),
                     "gaussian_wasserstein_correlation_norm": ("Gaussian Wasserstein correlation, normalised",
                                                               "ratio, 0-1"),
                     "mutual_info_score": ("mutual information between code dimensions", "nats")},
    "hoyer_sparsity": {"hoyer_sparsity": ("Hoyer sparsity", "0-1")},
    "active_units": {"active_units": ("active units", "latent dimensions"),
                     "active_fraction": ("fraction of active units", "0-1")},
    "total_correlation": {"total_correlation": ("total correlation of q(z)", "nats")},
    "rotation": {"max_abs_objective_change_over_stderr": ("largest change of the objective under rotation",
                                                          "Monte-Carlo standard errors"),
                 "mig_max_abs_change": ("largest change of MIG under rotation", "0-1"),
                 "factor_vae_max_abs_change": ("largest change of the FactorVAE score under rotation", "0-1")},
    "aggregate_kl": {"kl_qz_pz": ("KL(q(z) || p(z))", "nats"), "kl_pz_qz": ("KL(p(z) || q(z))", "nats")},
    "elbo": {"elbo": ("ELBO", "nats per observation"),
             "kl": ("KL(q(z|x) || p(z))", "nats per observation"),
             "recon_ll": ("reconstruction term of the ELBO", "nats per observation")},
    "iwae": {"iwae": ("IWAE bound on log p(x)", "nats per observation")},
    "inference_error": {"true_inference_error": ("true inference error", "nats per observation"),
                        "true_inference_error_aligned": ("true inference error, latents matched to the sources",
                                                         "nats per observation"),
                        "model_inference_error": ("model inference error", "nats per observation")},
}
# The figures' order: the field's headline numbers first, then the rest alphabetically.
FIRST = ("mig", "mig_chen", "factor_vae", "recon_ll")
MEAN_MODE = "mean"
LABEL_WIDTH = 64  # characters of an axis label's line
NOT_SCORES = re.compile(r"(_stderr$|^num_|^kl_\d+$|^variance_\d+$)")


@dataclass(frozen=True)
class MetricColumn:
    column: str  # as in results.csv
    mode: str    # representation mode: mean or sampled
    metric: str
    tag: str     # protocol tag, '' for the default protocol
    key: str

    @property
    def name(self):
        """Short: 'MIG', 'FactorVAE score [num_train=1000]', 'MIG, sampled representation'."""
        name = SCORES.get(self.metric, {}).get(self.key, (f"{self.metric}.{self.key}", None))[0]
        return (name + (f" {self.tag}" if self.tag else "")
                + ("" if self.mode == MEAN_MODE else f", {self.mode} representation"))

    @property
    def label(self):
        """An axis label with the unit: 'MIG (normalised by factor entropy, 0-1)'."""
        unit = SCORES.get(self.metric, {}).get(self.key, (None, None))[1]
        # a protocol tag may be longer than the axis: wrapped after its commas
        name = self.name.replace(self.tag, self.tag.replace(",", ", ")) if self.tag else self.name
        return textwrap.fill(name + (f" ({unit})" if unit else ""), LABEL_WIDTH)

    def order(self):
        known = FIRST.index(self.metric) if self.metric in FIRST else len(FIRST)
        keys = list(SCORES.get(self.metric, {}))
        return (self.mode != MEAN_MODE, self.mode, known, self.metric,
                keys.index(self.key) if self.key in keys else len(keys), self.key, self.tag)


def parse(column):
    """The MetricColumn of a results.csv column, or None for a column that names no value of a
    registered metric."""
    parts = parse_metric_column(column)
    if parts is None or parts.metric not in METRICS:
        return None
    return MetricColumn(column, parts.mode, parts.metric, parts.tag, parts.key)


def _score_keys(metric, keys):
    """The score keys of metric among keys, its headline first: the key the aggregation ranks a
    metric by (HEADLINE_KEYS), else the first of SCORES."""
    if metric in SCORES:
        scores = [key for key in SCORES[metric] if key in keys]
    else:
        scores = sorted(key for key in keys if not NOT_SCORES.search(key))
    headline = HEADLINE_KEYS.get(metric)
    return sorted(scores, key=lambda key: key != headline)


def score_columns(columns):
    """The score columns among metric columns, as MetricColumns in the figures' order."""
    parsed = [c for c in map(parse, columns) if c is not None]
    keys_of = {}
    for c in parsed:
        keys_of.setdefault(c.metric, set()).add(c.key)
    scores = [c for c in parsed if c.key in _score_keys(c.metric, keys_of[c.metric])]
    return sorted(scores, key=MetricColumn.order)


def headline_columns(columns, every_mode=False):
    """The headline columns among metric columns (see the module's docstring), in order: the mean
    representation's, or with every_mode those of the sampled one too."""
    scores = score_columns(columns)
    keys_of = {}
    for c in scores:
        keys_of.setdefault(c.metric, set()).add(c.key)
    return [c for c in scores if (every_mode or c.mode == MEAN_MODE)
            and c.key == _score_keys(c.metric, keys_of[c.metric])[0]]


def board_columns(board):
    """The metric columns summarised in a leaderboard (those with a `.mean` column)."""
    return [c[:-len(".mean")] for c in board.columns if c.endswith(".mean")]
