"""Gin configuration: the bindings users type, parsing with clear errors, and the spec of a
run that the bindings resolve to.

The configurables `train`, `dataset` and `model` only collect settings; the training loop
reads them through `resolve_run_spec()`, so a config can be checked before anything is written.
"""

import contextlib
import dataclasses
import logging
from pathlib import Path
import re
import sys

import gin

from dlbench import checks, rundir
import dlbench.data
import dlbench.methods  # noqa: F401  (registers the methods with gin)
from dlbench.errors import UserError
from dlbench.nn.architectures import ARCHITECTURES, check_fits
from dlbench.nn.likelihoods import LIKELIHOODS, get_likelihood
from dlbench.priors import DEFAULT_PRIOR, PRIORS, make_prior


# the folder dlbench's package sits in: a checkout of the repository when it holds gin/
CHECKOUT = Path(__file__).resolve().parent.parent


def gin_dir():
    """The folder of dlbench's own gin files (the checkout's gin/, or the installed copy)."""
    if (CHECKOUT / "gin").is_dir():
        return CHECKOUT / "gin"
    return Path(sys.prefix) / "share" / "dlbench" / "gin"


@gin.configurable("train")
def train_settings(method=gin.REQUIRED, steps=300000, batch_size=64, lr=1e-4, seed=0, checkpoint_every=10000,
                   log_every=100, adam_betas=(0.9, 0.999), adam_eps=1e-8, checkpoint_minutes=5.0, precision="float32",
                   compile=False):
    """`checkpoint_minutes`: a checkpoint is also written when this much wall-clock time has passed
    since the last one, so an interruption loses at most that much work (0: by steps only).
    `precision`: 'float32' (IEEE float32 throughout, also on a GPU), 'tf32' (float32, with a GPU's
    convolutions and matrix products on its tensor cores in TF32, a 10-bit mantissa; on a CPU the
    same as 'float32'), or 'bfloat16' to run each step's forward pass and objective under
    torch.autocast in bfloat16 (the weights, gradients and Adam stay float32).
    `compile`: True to compile each step's forward pass and objective with torch.compile (with CUDA
    graphs on a GPU); the arithmetic is fused differently, so the run is another run (its identity
    says so), equal to the eager one within rounding."""
    if not isinstance(method, dlbench.methods.Method):
        name, called = _referenced(method, dlbench.methods.METHODS)
        if name and not called:  # gin hands over the class itself, which had been printed as <class '...BetaVAE'>
            raise UserError(f"train.method = @{name} names the method without calling it; write @{name}() "
                            f"(with the parentheses)")
        prior, _ = _referenced(method, PRIORS)
        if prior:
            raise UserError(f"train.method = @{prior} names a prior, not a method; give a method such as "
                            f"@beta_vae(), and choose the prior with model.prior = '{prior}'")
        raise UserError(f"train.method must be a method reference such as @beta_vae(), got {method!r}")
    _check_method_name(method)
    return dict(method=method, steps=checks.integer("train.steps", steps, minimum=1),
                batch_size=checks.integer("train.batch_size", batch_size, minimum=1),
                lr=checks.nonzero_in_float32("train.lr", lr, "and Adam would then take no step"),
                seed=checks.integer("train.seed", seed, minimum=0, maximum=2**32 - 1),  # what numpy seeds take
                checkpoint_every=checks.integer("train.checkpoint_every", checkpoint_every, minimum=1),
                log_every=checks.integer("train.log_every", log_every, minimum=1),
                adam_betas=checks.numbers("train.adam_betas", adam_betas, length=2, minimum=0, maximum=0.999999),
                adam_eps=checks.nonzero_in_float32("train.adam_eps", adam_eps,
                                                  "and Adam divides by it where a gradient is 0"),
                checkpoint_minutes=checks.number("train.checkpoint_minutes", checkpoint_minutes, minimum=0),
                precision=checks.one_of("train.precision", precision, list(PRECISIONS)),
                compile=checks.flag("train.compile", compile))


PRECISIONS = ("float32", "tf32", "bfloat16")


@gin.configurable("dataset")
def dataset_settings(name=gin.REQUIRED, options=None):
    """`options`: constructor arguments of the dataset, e.g. {'seed': 3} (the ones its class lists)."""
    checks.one_of("dataset.name", name, dlbench.data.available_datasets())
    if options is not None and not isinstance(options, dict):
        raise UserError(f"dataset.options must be a dict such as {{'seed': 3}}, got {options!r}")
    return dict(name=name, options={} if options is None else options)


@gin.configurable("model")
def model_settings(architecture="conv", latent_dim=10, likelihood="bernoulli", prior=DEFAULT_PRIOR):
    """`prior` names a prior in dlbench.priors; its settings come from its own configurable."""
    latent_dim = checks.integer("model.latent_dim", latent_dim, minimum=1)
    name, _ = _referenced(prior, PRIORS)
    if name:  # its class or instance had been printed as the value got
        raise UserError(f"model.prior takes a prior's name, not a reference: write model.prior = '{name}' (its "
                        f"settings are bound as {name}.NAME = VALUE)")
    return dict(architecture=checks.one_of("model.architecture", architecture, sorted(ARCHITECTURES)),
                latent_dim=latent_dim,
                likelihood=checks.one_of("model.likelihood", likelihood, sorted(LIKELIHOODS)),
                prior=make_prior(checks.one_of("model.prior", prior, sorted(PRIORS)), latent_dim).config())


def _referenced(value, registry):
    """(name, called) of the entry of registry ({name: class}) whose class (a gin reference without
    its call, @beta_vae) or instance (@beta_vae()) value is, else (None, None)."""
    for name, cls in registry.items():
        if value is cls or type(value) is cls:
            return name, value is not cls
    return None, None


@dataclasses.dataclass
class RunSpec:
    """Everything a training run is a function of."""

    method: object
    train: dict
    dataset: dict
    model: dict

    def identity(self):
        """The run's identity as plain values: what run.json records and resume compares."""
        # checkpoint_minutes only decides when checkpoints are written: runs that differ in it are
        # the same run (it is recorded in run.json beside the identity)
        train = {k: v for k, v in self.train.items() if k not in ("method", "checkpoint_minutes")}
        # the defaults are left out, so runs recorded before these settings existed keep their identity
        for name, default in rundir.TRAIN_DEFAULTS_LEFT_OUT.items():
            if name in train and train[name] == default and type(train[name]) is type(default):
                del train[name]
        identity = {"method": self.method.name, "hyperparameters": self.method.hyperparameters(),
                    "dataset": self.dataset["name"], "seed": train["seed"], "train": train, "model": self.model}
        if self.dataset.get("options"):
            # only when set, so runs recorded before options existed keep their identity (and hash)
            identity["dataset_options"] = self.dataset["options"]
        return identity


def shown_gin_path(path):
    """A gin file of dlbench's own gin folder as 'gin/...', one elsewhere in dlbench's checkout (a
    reproduction's own study file) relative to the checkout, e.g. 'reports/reproductions/...': where
    they are differs from one machine to the next, so reports name them this way. Any other as given."""
    places = [(gin_dir(), Path("gin"))]
    if gin_dir() == CHECKOUT / "gin":
        places.append((CHECKOUT, Path()))
    for folder, shown_as in places:
        try:
            return str(shown_as / Path(path).resolve().relative_to(folder.resolve()))
        except (ValueError, OSError):
            continue
    return path


def resolve_gin_file(path):
    """A gin file given on the command line: as a path, or by name in dlbench's gin folder."""
    candidates = [Path(path), gin_dir() / path, gin_dir() / f"{path}.gin"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    if Path(path).is_dir():  # "not found" had sent the user looking for a file that is there
        raise UserError(f"'{path}' is a folder, not a gin file; give the path of a .gin file in it")
    raise UserError(f"gin file '{path}' not found; give a path to an existing .gin file "
                    f"or the name of one in {gin_dir()}")


@contextlib.contextmanager
def quiet_gin_includes():
    """Hide the 'Path not found' line gin logs for each place it looks for an included file before
    the one that has it (it tries the working folder and Python packages first): a found include is
    not an error, and one not found is reported by the parse itself."""
    gin_logger = logging.getLogger()  # gin's resource reader logs to the root logger
    level = gin_logger.level
    gin_logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        gin_logger.setLevel(level)


INCLUDE_CYCLE = "a file includes itself, directly or through the files it includes; remove the include that closes it"


class IncludeNotFound(UserError):
    """A gin `include` names a file found nowhere it is looked for."""

    def __init__(self, included, includer, folders):
        line = _line_including(includer, included) if includer else None
        by = (f"{includer} includes" + (f" on line {line}" if line else "")) if includer else "the binding includes"
        fix = (f"correct the include's path in {includer} (a relative one is looked for beside that file first)"
               if includer else "correct the include's path")
        looked = ", ".join("the working folder" if folder == Path() else str(folder) for folder in folders)
        where = "it does not exist" if Path(included).is_absolute() else f"looked in {looked}"
        super().__init__(f"'{included}', which {by}, is not found ({where}); {fix}")


def _line_including(includer, included):
    """The number of the line of includer that includes `included` (gin's message names it, but in
    lines of its own that one line leaves out), or None where it cannot be told."""
    statement = re.compile(r"\s*include\s+(['\"])" + re.escape(str(included)) + r"\1")
    try:
        lines = Path(includer).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    return next((number for number, text in enumerate(lines, start=1) if statement.match(text)), None)


def include_folders(includer, search_paths):
    """Where a relative include is looked for, in order: beside the file that holds it (when a file
    does), the working folder (where gin looks first), then search_paths."""
    folders = ([Path(includer).parent] if includer else []) + [Path(), *map(Path, search_paths)]
    return list(dict.fromkeys(folders))  # once each (two --gin files in one folder)


@contextlib.contextmanager
def includes_beside_their_file(search_paths):
    """While gin parses, find the file an `include` names first beside the file that holds it, as a
    user reads a relative include, then in the working folder and search_paths. gin itself looks
    only in its search paths, the working folder first: an include in an included file had been
    looked for where the command ran, not beside it. Yields the function to parse a file with.
    gin's parser calls gin.config.parse_config_file for each include, so that is replaced for
    the parse; a file not found here still gets gin's own readers (a Python package's resource)."""
    parse_found = gin.config.parse_config_file
    parsing = []  # the file parsed at each depth of includes, innermost last (None: a --gin_param's text)

    def parse_config_file(config_file, *args, **kwargs):
        includer = parsing[-1] if parsing else None
        folders = include_folders(includer, search_paths)
        path = next((folder / config_file for folder in folders if (folder / config_file).is_file()), None)
        parsing.append(path)
        try:
            return parse_found(str(path or config_file), *args, **kwargs)
        except OSError as err:
            if path is None and str(err).startswith("Unable to open file"):
                raise IncludeNotFound(config_file, includer, folders) from None
            raise
        finally:
            parsing.pop()

    gin.config.parse_config_file = parse_config_file
    try:
        yield parse_config_file
    finally:
        gin.config.parse_config_file = parse_found


def parse_gin(gin_files=(), gin_params=()):
    """Clear gin and parse the files and bindings; any mistake becomes a one-line UserError."""
    gin.clear_config()
    files = [str(resolve_gin_file(f)) for f in gin_files]
    # an include names a file beside the one that holds it, one of dlbench's or one beside a --gin file
    search_paths = [gin_dir(), *(Path(f).parent for f in files)]
    # one at a time, so that a mistake is reported with the file or binding it is in
    sources = [(f"gin file '{f}'", f, None) for f in files] + [(f"--gin_param '{b}'", None, b) for b in gin_params]
    for source, file, text in sources:
        try:
            with quiet_gin_includes(), includes_beside_their_file(search_paths) as parse_file:
                if file:
                    parse_file(file)
                else:
                    gin.parse_config(text)
        except RecursionError:  # gin follows includes without looking for cycles; its message recurses too
            raise UserError(f"bad gin config in {source}: {INCLUDE_CYCLE}") from None
        except IncludeNotFound as err:  # gin appends where the include is on further lines: the first names it
            raise UserError(f"bad gin config in {source}: {str(err).splitlines()[0]}") from None
        except Exception as err:  # gin reports with ValueError, SyntaxError, TokenError, ...
            problem = gin_problem(err, _read_text(file) if file else text, file)
            raise UserError(f"bad gin config in {source}: {problem}") from None


def _read_text(path):
    try:
        return Path(path).read_text(errors="replace")
    except OSError:  # gin read it a moment ago; without it the message only lacks the open bracket
        return None


def bindings_in(text):
    """(name, statement) of each binding in gin text (a string or an open file), the name as gin
    keys it: 'train.steps', 'scope/train.steps', or a macro's."""
    from gin import config_parser

    for statement in config_parser.ConfigParser(text, gin.config.ParserDelegate(skip_unknown=True)):
        if isinstance(statement, config_parser.BindingStatement):
            name = ".".join(part for part in (statement.selector, statement.arg_name) if part)
            yield (f"{statement.scope}/{name}" if statement.scope else name), statement


def check_each_binding_once(gin_params):
    """Refuse a binding that --gin_param gives twice with two values: gin keeps the last without a
    word. Binding again what a --gin file binds stays the way to override it."""
    given = {}
    for text in gin_params:
        try:
            bindings = list(bindings_in(text))
        except Exception:  # gin's parse errors come as several types; parse_gin words them
            continue
        for name, statement in bindings:
            if name in given and not _same_binding(given[name], (text, statement.value)):
                raise UserError(f"--gin_param gives {name} twice ('{given[name][0]}' and '{text}'); give it once")
            given[name] = (text, statement.value)


def _same_binding(first, second):
    # references (@beta_vae()) are objects without equality: their texts tell
    return first[1] == second[1] or "".join(first[0].split()) == "".join(second[0].split())


def unused_bindings(gin_params, called=None):
    """The bindings among gin_params of configurables the resolved run never called (a method or a
    prior it does not use, e.g. beta_tcvae.beta in a beta_vae run): gin ignores them silently.
    Call after resolve_run_spec, before gin is cleared; `called`: called_configurables(), where
    the caller has it already."""
    operative = called_configurables() if called is None else called
    maybe = [b for b in gin_params if bound_configurable(b) not in operative]
    if not maybe:  # as for nearly every run of a study: the whole config's text (slow to write) is not needed
        return []
    unused = _sections(gin.config_str()) - operative
    return [b for b in maybe if bound_configurable(b) in unused]


def unused_file_bindings(gin_params=(), called=None):
    """The bindings the gin files give (besides gin_params, which unused_bindings covers) of
    configurables the resolved run never called, e.g. beta_vae.beta of beta_vae.gin in a run whose
    --gin_param makes it a dip_vae: gin ignores them silently. Scoped ones are unused_scopes'.
    Call as unused_bindings."""
    operative = called_configurables() if called is None else called
    given = {binding.partition("=")[0].strip() for binding in gin_params}
    names = dict.fromkeys(name for name, _ in bindings_in(gin.config_str()) if "." in name and "/" not in name)
    return [name for name in names if name.rpartition(".")[0] not in operative and name not in given]


def unused_scopes():
    """The scoped configurables ('scope/beta_vae') bound but never called, as in a gin file's
    'scope/beta_vae.beta = 9.0' where no binding names that scope (train.method =
    @scope/beta_vae()): gin ignores such bindings without a word. Call as unused_bindings."""
    return sorted(name for name in _sections(gin.config_str()) - called_configurables() if "/" in name)


def unused_macros():
    """The macros bound but used by no binding the run read, as gin keys them: 'train/lr' of a
    gin file's 'train/lr = 1' (a typo of train.lr, which gin takes for a macro and ignores). Call as
    unused_bindings."""
    def macros(text):
        return {name for name, _ in bindings_in(text) if "." not in name}

    return sorted(macros(gin.config_str()) - macros(operative_config()))


def called_configurables():
    """The configurables the resolved run called (with the parameters it read of each)."""
    return _sections(operative_config())


def bound_configurable(binding):
    """'beta_vae' of 'beta_vae.beta = 4.0'."""
    return binding.partition("=")[0].strip().rpartition(".")[0]


def _sections(config_text):
    return set(re.findall(r"^# Parameters for ([^:]+):", config_text, re.MULTILINE))


def configurables():
    """{name: callable} of every configurable a run binds (for messages that list them)."""
    named = {"train": train_settings, "dataset": dataset_settings, "model": model_settings}
    return {**named, **dlbench.methods.METHODS, **PRIORS}


def _parameter_names(configurable):
    import inspect

    target = configurable.__init__ if isinstance(configurable, type) else configurable
    return [p for p in inspect.signature(inspect.unwrap(target)).parameters if p not in ("self", "latent_dim")]


def gin_problem(err, source_text=None, source_file=None):
    """What is wrong with a binding gin refused, and how to write it instead, in one line.
    source_text, source_file: as for syntax_problem."""
    text = syntax_problem(err, source_text, source_file) or _one_line(err)
    if text.endswith("; close it"):  # a bracket or string left open: the advice below is not for it
        return text
    unknown_param = re.search(r"Configurable '(\w+)' doesn't have a parameter named '(\w+)'", text)
    if unknown_param and unknown_param[1] in configurables():
        accepted = ", ".join(_parameter_names(configurables()[unknown_param[1]]))
        return f"{unknown_param[1]} has no parameter '{unknown_param[2]}'; its parameters: {accepted}"
    if "No configurable matching reference" in text:
        return f"{text}; methods: {', '.join('@' + m + '()' for m in sorted(dlbench.methods.METHODS))}"
    if "No configurable matching" in text:
        return f"{text}; configurables: {', '.join(configurables())}"
    if is_not_a_literal(err):
        return not_a_literal(err)
    ambiguous = re.search(r"Ambiguous selector '([\w./]+)'", text)
    if ambiguous:  # a configurable of one's own registered under a name dlbench's has too
        return (f"{text}; two configurables are named {ambiguous[1]!r}: register yours under a name of its own "
                f"(gin.configurable('my_name')), or write the full name gin lists")
    if isinstance(err, ImportError):  # a gin `import` line: nothing is wrong with the bindings
        return f"{text}; an `import` line names a module Python cannot import (put its folder on PYTHONPATH)"
    expression = " (values are not evaluated: write 200, not 100*2)" if "Expected newline" in text else ""
    return (f"{text}; a binding is NAME.PARAM = VALUE, VALUE a Python literal (1e-4, 'conv', [1, 2]) or a "
            f"@reference{expression}")


_TOKEN_ERROR = re.compile(r"^\('(?P<message>[^']*)', \((?P<line>\d+), (?P<column>\d+)\)\)")
_INCLUDE_LINE = re.compile(r'^In file "(?P<file>[^"]*)", line (?P<line>\d+)')


def syntax_problem(err, source_text=None, source_file=None):
    """Where text that gin cannot read goes wrong and what is wrong there, readably ('line 2, column
    13: Expected newline'), or None for another error. Python's words had shown a raw tuple for the
    tokenizer's errors ("('EOF in multi-line statement', (3, 0))") and no column for gin's own.
    source_text: the text parsed, to find the bracket an unended statement left open; source_file:
    the file parsed (the message names it already), to name only another (one it includes)."""
    included = _include_line(err)
    include = _INCLUDE_LINE.match(included or "")
    of = f" of the file that line {include['line']} of {include['file']} includes" if include else ""
    if isinstance(err, SyntaxError) and err.lineno and not is_not_a_literal(err):
        column = f", column {err.offset + 1}" if err.offset is not None else ""  # gin counts columns from 0
        if err.filename and err.filename != source_file:
            of = f" of {err.filename}"
        return f"line {err.lineno}{column}{of}: {err.msg.rstrip('.')}"
    token = _TOKEN_ERROR.match(_one_line(err))
    if token is None:
        return None
    if "string" in token["message"]:  # the tokenizer names where the string starts
        return (f"line {token['line']}, column {int(token['column']) + 1}{of}: this string is never closed "
                f"({token['message']}); close it")
    opened = None if include or source_text is None else _open_bracket(source_text)
    if opened:
        return f"line {opened.start[0]}, column {opened.start[1] + 1}: this '{opened.string}' is never closed; close it"
    return f"line {token['line']}{of}: the text ends inside a bracket left open ({token['message']}); close it"


def _open_bracket(text):
    """The token of the outermost bracket text leaves open, or None."""
    import io
    import tokenize

    opened = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.exact_type in (tokenize.LPAR, tokenize.LSQB, tokenize.LBRACE):
                opened.append(token)
            elif token.exact_type in (tokenize.RPAR, tokenize.RSQB, tokenize.RBRACE) and opened:
                opened.pop()
    except tokenize.TokenError:  # the text ends inside a bracket: the ones opened so far are the answer
        pass
    return opened[0] if opened else None


def is_not_a_literal(err):
    """Whether gin refused a value that ast.literal_eval cannot read (a bare word, an expression)."""
    return "malformed node" in str(err)


def not_a_literal(err):
    """The line for is_not_a_literal: which value, on which line, and how to write it (Python's own
    words, 'malformed node or string: <ast.Name object at 0x...>', name neither)."""
    token = re.search(r"Failed to parse token '(.*)'", str(err))
    line = getattr(err, "lineno", None)
    return (f"{f'line {line}: ' if line else ''}{repr(token[1]) if token else 'a value'} is not a Python literal; "
            "quote strings ('conv'), and write numbers, lists and dicts as literals (1e-4, [1, 2], {'a': 1})")


def _check_method_name(method):
    """A method of the user's own must name itself, and not as one of dlbench's: its runs record the
    name as their method, and would pass for (and be pooled with, or dropped as copies of) those of
    the method of that name."""
    cls = type(method)
    where = f"{cls.__module__}.{cls.__qualname__}"
    if not isinstance(method.name, str) or not method.name:
        raise UserError(f"the method {where} has no name; set its class attribute name = '...' to a name of its own")
    own = dlbench.methods.METHODS.get(method.name)
    if own is not None and own is not cls:
        raise UserError(f"the method {where} is named {method.name!r}, the name of dlbench's "
                        f"{own.__module__}.{own.__qualname__}; give it a name of its own (its runs would pass for "
                        f"{method.name}'s)")


def resolve_run_spec():
    """Call the configurables and return the RunSpec they describe; every value is type- and
    range-checked here, before anything is written."""
    try:
        train = train_settings()
        dataset = dataset_settings()
        model = model_settings()
    except UserError as err:  # gin appends where it happened on further lines; the first says it all
        raise UserError(str(err).splitlines()[0]) from None
    except Exception as err:
        raise UserError(_call_problem(err)) from None
    dataset["options"] = dlbench.data.checked_dataset_options(dataset["name"], dataset["options"])
    _check_batch_size(train)
    shape = dlbench.data.get_dataset_class(dataset["name"]).observation_shape
    if shape:  # known before the data loads (a linear Gaussian's depends on its options: checked at build)
        check_fits(model["architecture"], shape)
        get_likelihood(model["likelihood"], shape)
    return RunSpec(method=train["method"], train=train, dataset=dataset, model=model)


def _check_batch_size(train):
    method, needed = train["method"], train["method"].min_batch_size()
    if train["batch_size"] < needed:
        settings = ", ".join(f"{k} {v!r}" for k, v in method.hyperparameters().items() if isinstance(v, str))
        raise UserError(f"train.batch_size = {train['batch_size']} is too small for {method.name}"
                        f"{f' ({settings})' if settings else ''}: it needs batches of at least {needed}; "
                        f"raise train.batch_size")


def operative_config():
    return gin.operative_config_str()


def _call_problem(err):
    """One line for an error gin raised calling the configurables (gin_problem is for parsing), in
    words for the two that gin words after its own internals: no method, and a %MACRO never bound."""
    text = str(err)
    if "Required bindings for `train` not provided" in text and "'method'" in text:
        return ("no method given: bind train.method with a method's gin file (e.g. --gin beta_vae) or "
                "--gin_param 'train.method = @beta_vae()' (a run's own config is --gin RUN_DIR/model/config.gin)")
    macro = re.search(r"configurable 'macro'.*in scope '([^']+)'", text, re.DOTALL)
    if macro:
        return f"the macro %{macro[1]} is used but never bound; bind it too, e.g. {macro[1]} = 4.0"
    return f"bad gin config: {_one_line(err)}"


def _one_line(err):
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = lines[0] if lines else type(err).__name__
    where = _include_line(err)
    return f"{text} ({where})" if where else text


def _include_line(err):
    """The line gin adds to an error of a file another includes ('In file "a.gin", line 1'), or None."""
    return next((line.strip() for line in str(err).splitlines()[1:] if line.strip().startswith("In ")), None)
