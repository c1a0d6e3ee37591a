"""Studies: a gin file naming a base config, fixed bindings, a sweep (dlbench.study.sweep: dicts
are products, tuple keys zip, lists chain) and the metrics, expanded into named runs and run by an
executor. A study file binds the `study` configurable, e.g.:

    study.base_gin = ['beta_vae.gin']
    study.fixed = {'train.steps': 300}
    study.sweep = {'beta_vae.beta': [1.0, 4.0], 'train.seed': [0, 1]}
    study.metrics = ['mig', 'factor_vae', 'recon_ll']
    study.metric_params = {'factor_vae': {'num_train': 1000}}

Each run's directory is named after what it is, not its position in the sweep:
<method>/<param>=<value>[,...]/seed=<n> (with a short hash of its bindings added only where two
runs would otherwise share a name), so a study that grows (new values, seeds or methods) keeps the
names, and the results, of the runs it had. The runs root holds study.json, the study's record.
"""

import dataclasses
import hashlib
import inspect
import json
import os
import re
from pathlib import Path

import gin

import dlbench
from dlbench import rundir
from dlbench.config import INCLUDE_CYCLE, gin_dir, includes_beside_their_file, quiet_gin_includes
from dlbench.errors import CorruptFile, UserError, shell_word
from dlbench.selection import matching
from dlbench.study.sweep import binding, expand

STUDY_JSON = "study.json"


@gin.configurable("study")
def study_settings(base_gin=gin.REQUIRED, fixed=None, sweep=None, metrics=("mig", "factor_vae", "recon_ll"),
                   metric_params=None):
    base_gin = [base_gin] if isinstance(base_gin, str) else base_gin
    _require(isinstance(base_gin, (list, tuple)) and base_gin and all(isinstance(f, str) for f in base_gin),
             "study.base_gin", "a list of gin file names, e.g. ['beta_vae.gin']", base_gin)
    _require(fixed is None or isinstance(fixed, dict), "study.fixed", "a dict of bindings, e.g. {'train.steps': 300}", fixed)
    _require(isinstance(metrics, (list, tuple)) and metrics and all(isinstance(m, str) for m in metrics),
             "study.metrics", "a non-empty list of metric names, e.g. ['mig', 'factor_vae']", metrics)
    _require(metric_params is None or (isinstance(metric_params, dict) and all(isinstance(v, dict) for v in metric_params.values())),
             "study.metric_params", "a dict of dicts, e.g. {'factor_vae': {'num_train': 1000}}", metric_params)
    return dict(base_gin=list(base_gin), fixed=dict(fixed or {}), sweep=sweep,
                metrics=list(metrics), metric_params=dict(metric_params or {}))


def _require(ok, binding, expected, value):
    if not ok:
        raise UserError(f"{binding} must be {expected}, got {value!r}")


@dataclasses.dataclass
class RunSpec:
    name: str                 # the run directory's name under the runs root
    gin_files: list
    gin_params: list          # bindings, fixed ones first (those not swept), then this run's swept values


@dataclasses.dataclass
class Study:
    name: str
    file: str
    runs: list
    metrics: list
    metric_params: dict
    identities: dict = dataclasses.field(default_factory=dict, repr=False)  # run name -> what run.json records
    # run name -> the fixed bindings that run does not read (another method's or prior's): its
    # --dry_run command leaves them out, where dlb_train would note them as unused
    unread: dict = dataclasses.field(default_factory=dict, repr=False)


def study_file(name_or_gin):
    """A study by name (gin/studies/NAME.gin) or by path."""
    path = Path(name_or_gin)
    if path.suffix == ".gin":
        if path.is_dir():
            raise UserError(f"'{path}' is a folder, not a study file; give the path of a study .gin file")
        if not path.is_file():
            raise UserError(f"study file '{path}' not found; give an existing .gin file or a study name")
        return path
    named = gin_dir() / "studies" / f"{name_or_gin}.gin"
    if not named.is_file():
        known = sorted(p.stem for p in (gin_dir() / "studies").glob("*.gin"))
        raise UserError(f"unknown study '{name_or_gin}'; available: {', '.join(known)} (or give a .gin path)")
    return named


def load_study(name_or_gin):
    """The study, every run resolved (its config checked, its method and seed known) and named,
    and its metrics checked: a mistake anywhere is a UserError naming the run, before any runs."""
    path = study_file(name_or_gin)
    gin.clear_config()
    # a study file may include a study beside it, or one of dlbench's named studies, by file name
    search_paths = [path.parent, gin_dir() / "studies"]
    try:
        with quiet_gin_includes(), includes_beside_their_file(search_paths) as parse_file:
            parse_file(str(path))
        _check_each_binding_once(path)
        settings = study_settings() if _binds_study() else None
    except UserError as err:
        raise UserError(f"bad study file '{path}': {str(err).splitlines()[0]}") from None
    except RecursionError:
        raise UserError(f"bad study file '{path}': {INCLUDE_CYCLE}") from None
    except Exception as err:  # gin's parse errors come as several exception types
        raise UserError(f"bad study file '{path}': {_study_problem(err, path)}") from None
    finally:
        gin.clear_config()
    if settings is None:  # gin's "Required bindings for `study` not provided" did not say what the file is
        raise UserError(f"'{path}' is a run config, not a study file (it binds no study.base_gin); train it with "
                        f"dlb_train --gin {shell_word(path)}, or see gin/studies/ for study files")
    _check_only_study_bindings(path)
    base = [str(_base_file(f, path)) for f in settings["base_gin"]]
    fixed = settings["fixed"]
    assignments = expand(settings["sweep"])
    study = Study(name=path.stem, file=str(path.resolve()), runs=[], metrics=settings["metrics"],
                  metric_params=settings["metric_params"])
    _check_metrics(study)
    resolved = [_resolve(study, base, fixed, assignment) for assignment in assignments]
    _check_fixed_bindings_read(study, fixed, [called for *_, called in resolved])
    names = _unique_names([name for name, *_ in resolved], [spec for _, spec, *_ in resolved])
    study.runs = [dataclasses.replace(spec, name=name) for name, (_, spec, *_) in zip(names, resolved)]
    study.identities = {name: identity for name, (_, _, identity, _) in zip(names, resolved)}
    study.unread = {name: _unread(fixed, assignment, called)
                    for name, assignment, (*_, called) in zip(names, assignments, resolved)}
    _check_one_run_each(study)
    _check_runs_fit_data(study)
    return study


def _study_problem(err, path):
    """One line for a study file gin refused: an unknown study.* (a typo of study.sweep had been
    told without the names a study binds) or configurable, else as for a run's config."""
    from dlbench.config import gin_problem

    text = next(iter(str(err).splitlines()), "")
    names = ", ".join(f"study.{name}" for name in inspect.signature(study_settings).parameters)
    unknown = re.search(r"Configurable 'study' doesn't have a parameter named '(\w+)'", text)
    if unknown:
        return f"study has no parameter '{unknown[1]}'; a study file binds {names}"
    if "No configurable matching" in text:
        return f"{text.rstrip('.')}; a study file binds {names} (a run's settings go in study.fixed or study.sweep)"
    try:
        source = path.read_text(errors="replace")
    except OSError:  # gin read it a moment ago; without it the message only lacks the open bracket
        source = None
    return gin_problem(err, source, str(path))


def _binds_study():
    """Whether the parsed config binds any study.* (its own or an included study's)."""
    for name in inspect.signature(study_settings).parameters:
        try:
            gin.query_parameter(f"study.{name}")
            return True
        except ValueError:
            continue
    return False


def _check_each_binding_once(path):
    """Refuse a binding given twice in one study file: gin keeps the last without a word, which had
    dropped a sweep's first values unseen. Binding again what an included file binds stays the way
    one study shrinks or varies another."""
    from dlbench.config import bindings_in

    first_line = {}
    with open(path) as text:
        for name, statement in bindings_in(text):
            line = statement.location.line_num
            if name in first_line:
                raise UserError(f"{name} is bound twice, on lines {first_line[name]} and {line} (gin would keep "
                                f"line {line} alone); keep one")
            first_line[name] = line


def _check_only_study_bindings(path):
    """Refuse a run's setting bound outside study.fixed and study.sweep (train.steps = 3): the runs
    are configured from those alone, and gin had taken it without a word."""
    from dlbench.config import bindings_in

    with open(path) as text:
        for name, statement in bindings_in(text):
            if "." in name and not name.startswith("study."):  # a macro (STEPS = 3000) has no '.'
                value = statement.value
                literal = isinstance(value, (bool, int, float, str, list, tuple, dict, type(None)))
                plain = value if literal else str(value)  # a reference (@beta_tcvae()) is a string in study.fixed
                raise UserError(f"bad study file '{path}': line {statement.location.line_num} binds {name}, which no "
                                f"run reads (a run's settings come from study.fixed and study.sweep alone); give it "
                                f"there: study.fixed = {{{name!r}: {plain!r}, ...}}")


def _check_one_run_each(study):
    """Refuse a sweep that names one run twice in other words (beta 1 and 1.0, a default given
    again): it had trained the same model twice."""
    seen = {}
    for name, identity in study.identities.items():
        key = json.dumps(identity, sort_keys=True, default=str)
        if key in seen:
            raise UserError(f"study {study.name}: runs {seen[key]} and {name} are the same run (their settings "
                            f"resolve alike); remove the repeated value from study.sweep")
        seen[key] = name


def _check_runs_fit_data(study):
    """Refuse a model or a metric that cannot take a run's dataset before any run trains: a
    metric had failed every run's evaluation after the whole study had trained, and a likelihood
    or architecture of a dataset generated in memory (whose shape its options decide) had failed
    each run as it started."""
    from dlbench import metrics
    from dlbench.nn.architectures import check_fits
    from dlbench.nn.likelihoods import get_likelihood

    datasets = {}
    for name_of_run, identity in study.identities.items():
        key = (identity["dataset"], json.dumps(identity.get("dataset_options", {}), sort_keys=True))
        if key not in datasets:
            datasets[key] = _dataset_to_check(*key)
        shape, model = datasets[key].observation_shape, identity["model"]
        problem = metrics.metrics_problem(study.metrics, study.metric_params, datasets[key], model["latent_dim"],
                                          "set {} in study.metric_params")
        if problem:
            raise UserError(f"study {study.name}: study.metrics: {problem}")
        try:
            if shape:
                check_fits(model["architecture"], shape)
                get_likelihood(model["likelihood"], shape)
        except UserError as err:
            raise UserError(f"study {study.name}, run {name_of_run}: {err}") from None


def _dataset_to_check(name, options):
    """The data a study's runs train on where it is generated in memory (small, and its options
    decide facts a metric needs, such as its number of sources), else its class: loading a file
    up front would cost each study the time of one run."""
    import dlbench.data
    from dlbench.data.ground_truth import GeneratedInMemory

    dataset_class = dlbench.data.get_dataset_class(name)
    if issubclass(dataset_class, GeneratedInMemory):
        return dataset_class(**json.loads(options))
    return dataset_class


def _check_metrics(study):
    from dlbench import metrics
    from dlbench.evaluation import check_request

    for name in study.metrics:
        try:
            metrics.metric_params(name)  # a UserError for an unknown metric
        except UserError as err:
            raise UserError(f"study {study.name}: study.metrics: {err}") from None
    try:
        check_request(study.metrics, "mean", study.metric_params)
    except UserError as err:
        raise UserError(f"study {study.name}: study.metric_params: {err}") from None


def _resolve(study, base, fixed, assignment):
    """(readable name, RunSpec, identity, the configurables it calls) of one assignment, its config
    resolved and checked."""
    from dlbench.config import called_configurables, parse_gin, resolve_run_spec, unused_bindings

    swept = [binding(k, v) for k, v in assignment.items()]
    # a swept value replaces a fixed one of its name, given once: dlb_train (the --dry_run commands)
    # refuses a binding --gin_param gives twice
    params = [binding(k, v) for k, v in fixed.items() if k not in assignment] + swept
    label = ", ".join(swept) or "its fixed bindings"
    try:
        parse_gin(base, params)
        spec = resolve_run_spec()
        # a swept value the run never reads had named it, and several had been "the same run"
        # (fixed bindings may go unused: studies fix every method's settings for all their runs)
        called = called_configurables()
        unused = unused_bindings(swept, called)
        if unused:
            raise UserError(f"study.sweep sets {', '.join(unused)}, which this {spec.method.name} run does not read "
                            f"(a method or prior it does not call); sweep it with the method or prior that reads it")
    except UserError as err:
        raise UserError(f"study {study.name}, run with {label}: {err}") from None
    finally:
        gin.clear_config()
    return (run_name(spec.method.name, assignment, spec.train["seed"]), RunSpec("", base, params), spec.identity(),
            called)


def _check_fixed_bindings_read(study, fixed, called_by_runs):
    """Refuse a fixed binding that no run of the study reads (of a method or prior none of them
    calls: a misspelt method, a prior left out of the sweep): gin had ignored it without a word."""
    from dlbench.config import bound_configurable

    called = set().union(*called_by_runs)
    unread = [binding(k, v) for k, v in fixed.items() if bound_configurable(k) and bound_configurable(k) not in called]
    if unread:
        raise UserError(f"study {study.name}: study.fixed sets {', '.join(unread)}, which no run of the study reads "
                        f"(a method or prior none of its runs calls); remove it, or sweep the method or prior that "
                        f"reads it")


def _unread(fixed, assignment, called):
    """The fixed bindings of a run (those its assignment does not replace) of configurables it does
    not call; a macro's (no configurable) counts as read."""
    from dlbench.config import bound_configurable

    return [binding(k, v) for k, v in fixed.items()
            if k not in assignment and bound_configurable(k) and bound_configurable(k) not in called]


def run_name(method, assignment, seed):
    """<method>/<param>=<value>[,...]/seed=<n>: the swept values but the seed and the method."""
    parts = [f"{key.rsplit('.', 1)[-1]}={_value_text(value)}" for key, value in assignment.items()
             if key not in ("train.seed", "train.method")]
    return "/".join([method, *([",".join(parts)] if parts else []), f"seed={seed}"])


def _value_text(value):
    if isinstance(value, str):
        text = value.lstrip("@").removesuffix("()")
    elif isinstance(value, (list, tuple, dict)):
        text = "#" + hashlib.sha1(json.dumps(value, sort_keys=True).encode()).hexdigest()[:8]
    else:
        text = repr(value)
    return re.sub(r"[^A-Za-z0-9_.+-]", "", text) or "_"


def _unique_names(names, specs):
    """Names, with a short hash of the run's bindings added to those that would be shared."""
    counts = {name: names.count(name) for name in names}
    unique = []
    for name, spec in zip(names, specs):
        if counts[name] > 1:
            digest = "h" + hashlib.sha1(json.dumps(spec.gin_params).encode()).hexdigest()[:8]
            head, seed = name.rsplit("/", 1)
            method, _, values = head.partition("/")
            name = f"{method}/{values + ',' if values else ''}{digest}/{seed}"
        unique.append(name)
    repeated = next((i for i, name in enumerate(unique) if name in unique[:i]), None)
    if repeated is not None:
        raise UserError(f"the study's sweep gives the run {names[repeated]} more than once; remove the repeated value")
    return unique


def check_runs_root(study, runs, runs_root):
    """A UserError unless runs_root can hold `runs` of this study: it is not inside another study's
    root or a run, holds no other study, and none of the runs there was trained with another config
    (the study file changed since). Reads only; every mode of dlb_study checks this first."""
    runs_root = Path(runs_root)
    if rundir.is_run(runs_root):  # study.json would be written into the run, and its runs beside its files
        raise UserError(f"--runs_root '{runs_root}' is a run directory of dlb_train; give a --runs_root outside it")
    for parent in runs_root.absolute().parents:
        if (parent / STUDY_JSON).is_file() or rundir.is_run(parent):
            what = "the runs root of a study" if (parent / STUDY_JSON).is_file() else "a run directory"
            raise UserError(f"--runs_root '{runs_root}' is inside '{parent}', {what}; its runs would be taken "
                            f"for that folder's; give a --runs_root outside it")
    held = _study_held_below(runs_root)
    if held:
        raise UserError(f"--runs_root '{runs_root}' holds '{held}', the runs root of a study, which could no "
                        f"longer run once this one holds it; give a --runs_root beside it")
    _check_held_study(study, runs_root)
    _check_run_places(runs, runs_root)
    changed = {}
    for spec in runs:
        differences = _changed_config(study, spec, runs_root)
        if differences:
            changed[spec.name] = differences
    if changed:
        shown = "; ".join(f"{name}: {', '.join(differences)}" for name, differences in list(changed.items())[:2])
        raise UserError(f"'{runs_root}' holds {len(changed)} of these runs trained with another config ({shown}"
                        f"{'; ...' if len(changed) > 2 else ''}): the study file changed since they ran; give the "
                        f"changed study another --runs_root, or restore the file")


def keep_earlier_names(study, runs_root, log=print):
    """Name each run of the study that has no directory of its own under runs_root, but was trained
    there under the name an earlier version of the study gave it, by that name. A setting left at
    its default and swept since names its default run anew (beta_vae/seed=0 becomes
    beta_vae/beta=4.0/seed=0), and the grown study had trained that run a second time."""
    if not Path(runs_root).is_dir() or _check_held_study(study, runs_root) is None:
        return  # an earlier version of this study recorded its runs in its study.json
    names = {spec.name for spec in study.runs}
    unseen = {name for name in names if not rundir.is_run(rundir.study_run_dir(runs_root, name))}
    earlier = _earlier_runs(runs_root, names) if unseen else {}
    renamed = {}
    for spec in study.runs:
        found = earlier.pop(rundir.identity_key(study.identities[spec.name]), None) if spec.name in unseen else None
        if found:
            renamed[spec.name] = found
    if not renamed:
        return
    study.runs = [dataclasses.replace(spec, name=renamed.get(spec.name, spec.name)) for spec in study.runs]
    study.identities = {renamed.get(name, name): identity for name, identity in study.identities.items()}
    study.unread = {renamed.get(name, name): unread for name, unread in study.unread.items()}
    new, old = next(iter(renamed.items()))
    log(f"study {study.name}: {len(renamed)} of its runs keep the names an earlier version of the study gave them "
        f"in '{runs_root}' (e.g. {old} for {new}), and are not trained again")


def _earlier_runs(runs_root, names):
    """{identity key: name} of the runs under runs_root not named in `names` (the first by name of
    those that are one run twice), whose run.json records their config."""
    earlier = {}
    for run_dir in _runs_below(runs_root):
        name = run_dir.relative_to(runs_root).as_posix()
        if name in names:
            continue
        try:
            record = rundir.read_run(run_dir)
        except UserError:
            continue  # a damaged run cannot be matched; it is left where it is
        if rundir.records_config(record):
            earlier.setdefault(rundir.identity_key(record), name)
    return earlier


def _runs_below(runs_root):
    """The run directories under runs_root, sorted by path; what lies inside a run is not searched."""
    for folder, subfolders, files in os.walk(runs_root):
        subfolders.sort()
        if folder != str(runs_root) and rundir.RUN_JSON in files:
            subfolders[:] = []
            yield Path(folder)


def _study_held_below(runs_root):
    """The first folder under runs_root (not itself) that holds a study.json, or None. Runs are not
    searched: a study's file never lies in one, and a large study's runs hold most of the tree."""
    for folder, subfolders, files in os.walk(runs_root):
        if folder != str(runs_root) and STUDY_JSON in files:
            return Path(folder)
        subfolders[:] = sorted(name for name in subfolders if not rundir.is_run(Path(folder) / name))
    return None


def _check_run_places(runs, runs_root):
    """A file where a run's folder (or a folder above it, under runs_root) goes is found before the
    first run: reached in turn, it had stopped the study halfway, with advice to choose another path."""
    for spec in runs:
        place = rundir.obstacle_to_folder(rundir.study_run_dir(runs_root, spec.name), runs_root)
        if place:
            raise UserError(f"'{place}' is a file, where the folder of the study's run {spec.name} goes; move it "
                            f"away (or give another --runs_root)")


def _check_held_study(study, runs_root):
    """The runs root's study.json (None where there is none), which must be study's."""
    path = Path(runs_root) / STUDY_JSON
    if not path.is_file():
        return None
    fix = "delete it if the runs root holds only this study"
    record = rundir.read_json(path, fix=fix)
    held = record.get("name")
    if not isinstance(held, str):
        raise CorruptFile(path, "it names no study", fix)
    if held != study.name:
        # a file that includes the held study to grow it is still another study: its name is its file's
        raise UserError(f"'{runs_root}' holds the study {held!r}, not {study.name!r} (a study is named after its "
                        f"file, {Path(study.file).name}); give another --runs_root, or, to grow {held!r}, write the "
                        f"grown study into a file named {held}.gin")
    return record


def _changed_config(study, spec, runs_root):
    """How the run already in spec's directory differs from spec ([] where it does not, or is
    not there; a damaged run.json is the run's own failure, reported when it is reached)."""
    run_dir = rundir.study_run_dir(runs_root, spec.name)
    if not rundir.is_run(run_dir):
        return []
    try:
        record = rundir.read_run(run_dir)
    except UserError:
        return []
    if not rundir.records_config(record):
        return []
    return rundir.config_differences(record, study.identities[spec.name])


def record_study(study, runs_root, log=print):
    """Write RUNS_ROOT/study.json (atomically), refusing a root that holds another study, and saying
    so where a study file of the same name elsewhere had been recorded there."""
    held = _check_held_study(study, runs_root)  # again: another study may have taken the root since the check
    if held is not None and held.get("file") != study.file:
        log(f"{runs_root}: the study {study.name!r} recorded there came from {held.get('file')}; "
            f"it now comes from {study.file}")
    rundir.write_json(Path(runs_root) / STUDY_JSON, {"name": study.name, "file": study.file, "dlbench_version": dlbench.__version__,
                             "metrics": study.metrics, "metric_params": study.metric_params,
                             "runs": [dataclasses.asdict(spec) for spec in study.runs]})


def shard(runs, spec):
    """The runs of shard 'I/N' (0-based I): every N-th run starting at I."""
    match = re.fullmatch(r"(\d+)/(\d+)", spec or "")
    if not match or not 0 <= int(match[1]) < int(match[2]):
        raise UserError(f"bad --shard '{spec}'; write I/N with 0 <= I < N, e.g. 0/4")
    if int(match[1]) >= len(runs):  # it would do nothing and say the study is done
        raise UserError(f"--shard {spec} holds none of the {len(runs)} runs (shard I takes runs I, I+N, ...); "
                        f"split them into at most {len(runs)} shards")
    return runs[int(match[1])::int(match[2])]


def only(runs, patterns):
    """The runs whose names match one of the --only patterns (all runs for none)."""
    kept = set(matching([spec.name for spec in runs], patterns, f"the study's {len(runs)} runs"))
    return [spec for spec in runs if spec.name in kept]


def _base_file(name, study_path):
    for candidate in (study_path.parent / name, gin_dir() / name):
        if candidate.is_file():
            return candidate
    raise UserError(f"base gin file '{name}' of study '{study_path}' not found")


# a run's state in a study, from its directory alone
DONE, FAILED, RUNNING, INTERRUPTED = rundir.Status.DONE, rundir.Status.FAILED, rundir.Status.RUNNING, \
    rundir.Status.INTERRUPTED
NOT_STARTED, UNEVALUATED = "not started", "trained, not evaluated"
REEVALUATE = "to evaluate again (a result damaged)"


def run_state(study, spec, runs_root):
    """(state, reason) of one run, from its directory alone: done, failed (with the reason),
    running (a live claim), interrupted, trained but not evaluated, to evaluate again (naming its
    damaged results), or not started (also a start cut short before run.json, which training
    starts again)."""
    run_dir = rundir.study_run_dir(runs_root, spec.name)
    if not rundir.is_run(run_dir):
        if run_dir.is_dir() and not rundir.holds_only_a_starts_drafts(run_dir):
            return FAILED, f"'{run_dir}' holds files but no run; move them away"  # as training finds it
        return NOT_STARTED, None
    try:
        record = rundir.read_run(run_dir)
    except UserError as err:
        return FAILED, str(err)
    status = record.get("status")
    if status == FAILED or record.get("evaluation_error"):
        return FAILED, record.get("error") or record.get("evaluation_error")
    if status == DONE:
        from dlbench.study.unit import damaged_training

        damaged = damaged_training(run_dir)
        return (FAILED, damaged) if damaged else _evaluation_state(study, run_dir)
    try:
        rundir.check_not_held(run_dir)
    except rundir.RunHeld:
        return RUNNING, None
    return INTERRUPTED, record.get("error")


def _evaluation_state(study, run_dir):
    """(state, reason) of a trained run by its stored results: DONE, UNEVALUATED (naming the
    metrics missing) or REEVALUATE (naming the damaged files, which evaluating the run computes
    again; one of them had stopped --status for every run)."""
    from dlbench.evaluation import result_mode, stored_result

    missing, damaged = [], []
    for metric in study.metrics:
        try:
            if stored_result(run_dir, result_mode(metric, "mean"), metric, study.metric_params.get(metric, {}),
                             0) is None:
                missing.append(metric)
        except CorruptFile as err:
            damaged.append(f"'{err.path}' is damaged ({err.problem})")
    if damaged:
        again = "it" if len(damaged) == 1 else "them"
        return REEVALUATE, "; ".join(damaged) + f"; running the study again computes {again} again"
    return (UNEVALUATED, f"missing {', '.join(missing)}") if missing else (DONE, None)


def study_status(study, runs, runs_root):
    """{state: [(run name, reason), ...]} over the runs."""
    states = {}
    for spec in runs:
        state, reason = run_state(study, spec, runs_root)
        states.setdefault(state, []).append((spec.name, reason))
    return states
