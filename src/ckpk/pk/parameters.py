"""The registry of PK parameters: the one place a column of ``pk/nca.tsv`` or
``pk/model_fits.tsv`` is declared.

Each :class:`Parameter` holds the ckpk column, the PKNCA 0.12.1 name, the CDISC SDTM PP
test code (PPTESTCD, as PKNCA registers it with ``add.interval.col(pptestcd_cdisc=...)``),
the kind of unit, a description and the rule's source. Everything else is derived from
here: the column lists and their order (:func:`nca_columns`, :func:`model_fit_columns`),
the empty result rows, the units of ``pk/summary_by_dose.tsv``, the PKNCA name → column
map the tests compare with PKNCA's own results, and, in :mod:`ckpk.pk.parameter_tables`,
the column help of ``ckpk nca`` and ``ckpk fit``, ``ckpk parameters`` and the column
tables of config/README.md.

The partial AUC is named after its end day (``auc_0_28`` for the default
:data:`DEFAULT_PARTIAL_AUC_END`, ``auc_0_14`` for ``--end 14``), so the column templates
hold ``{end}``; :func:`partial_auc_column` gives the name for a day.

This module imports nothing heavy, so ``ckpk --help`` stays instant.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

#: End day of the partial AUC when neither ``--end`` nor ``nca.partial_auc_end`` says
#: otherwise (config/config.yaml holds the same value; a test keeps them equal).
DEFAULT_PARTIAL_AUC_END = 28.0


#: CDISC PK parameter names (PPTEST, codelist C85839) of the PPTESTCD codes used here.
CDISC_TESTS = {
    "CMAX": "Max Conc",
    "TMAX": "Time of CMAX",
    "CLST": "Last Nonzero Conc",
    "TLST": "Time of Last Nonzero Conc",
    "AUCLST": "AUC to Last Nonzero Conc",
    "AUCALL": "AUC All",
    "AUCIFO": "AUC Infinity Obs",
    "AUCINT": "AUC from T1 to T2",
    "LAMZ": "Lambda z",
    "LAMZHL": "Half-Life Lambda z",
    "R2": "R Squared",
    "R2ADJ": "R Squared Adjusted",
    "LAMZNPT": "Number of Points for Lambda z",
    "LAMZLL": "Lambda z Lower Limit",
    "LAMZUL": "Lambda z Upper Limit",
}


class UnitKind(Enum):
    """What a column measures; the value is how the unit is printed (U = analyte unit)."""

    CONCENTRATION = "U"
    TIME = "day"
    AUC = "U·day"
    RATE = "1/day"
    COUNT = "count"
    FRACTION = "fraction"
    UNITLESS = "unitless"
    BOOLEAN = "true/false"
    TEXT = "text"

    @property
    def summary_unit(self) -> str:
        """Unit template of ``pk/summary_by_dose.tsv`` ({unit} = the analyte's unit), for
        the kinds a dose summary reports (concentration, time, AUC)."""
        return {"U": "{unit}", "day": "day", "U·day": "{unit}*day"}[self.value]


@dataclass(frozen=True)
class Parameter:
    """One column: ``column`` may hold ``{end}``, the partial-AUC end day."""

    column: str
    unit: UnitKind
    description: str
    pknca: str = ""  # PKNCA parameter name, e.g. "aucint.last"
    cdisc: str = ""  # SDTM PP PPTESTCD, e.g. "AUCINT"
    source: str = ""  # the rule's authority: a PKNCA function, a paper, docs/rules.md
    interval: bool = False  # over [0, END] (PKNCA interval with CDISC PPSTINT/PPENINT)
    label: bool = False  # names the profile (subject, analyte, ...) rather than a result
    theta: str = ""  # model: the likelihood's transformed parameter this estimate is
    same_as: str = ""  # model: the estimate this one transforms (empty whenever it is)
    needs: tuple[str, ...] = ()  # model: the estimates this one is computed from

    @property
    def cdisc_test(self) -> str:
        """The CDISC parameter name (PPTEST) of ``cdisc`` ("" without a code)."""
        return CDISC_TESTS.get(self.cdisc, "")

    def name(self, end: float = DEFAULT_PARTIAL_AUC_END) -> str:
        """The column name for a partial AUC ending on day ``end``."""
        return self.column.replace("{end}", format_day(end))

    def describe(self, end: float = DEFAULT_PARTIAL_AUC_END) -> str:
        """The description, column names in it following ``end`` as well."""
        return self.description.replace("{end}", format_day(end))

    def cdisc_interval(self, end: float = DEFAULT_PARTIAL_AUC_END) -> str:
        """CDISC PPSTINT and PPENINT of an interval parameter (empty for the others)."""
        if not (self.cdisc and self.interval):
            return ""
        # ISO 8601 durations after the dose, as PKNCA's CDISC export writes them.
        return f"PPSTINT P0D, PPENINT P{format_day(end)}D"


_U, _DAY, _AUC, _RATE = UnitKind.CONCENTRATION, UnitKind.TIME, UnitKind.AUC, UnitKind.RATE
_COUNT, _TEXT = UnitKind.COUNT, UnitKind.TEXT
_HALF_LIFE = "PKNCA pk.calc.half.life"
#: Column template of the partial AUC, named after its end day.
PARTIAL_AUC = "auc_0_{end}"

#: ``pk/nca.tsv`` in column order (PKNCA 0.12.1 rules, docs/rules.md "Non-compartmental
#: analysis").
NCA_PARAMETERS: tuple[Parameter, ...] = (
    Parameter("subject_id", _TEXT, "subject", source="pk/concentrations.tsv", label=True),
    Parameter(
        "dose_level", _TEXT, "dose level from `subjects.tsv`", source="subjects.tsv", label=True
    ),
    Parameter(
        "analyte",
        _TEXT,
        "analyte (`car_per_ul`, `car_pct_cd3`, `car_copies_per_ug`)",
        source="pk/concentrations.tsv",
        label=True,
    ),
    Parameter("unit", _TEXT, "the analyte's unit U", source="pk/concentrations.tsv", label=True),
    Parameter("cmax", _U, "largest level, BLQ = 0", "cmax", "CMAX", "PKNCA pk.calc.cmax"),
    Parameter("tmax", _DAY, "first day of Cmax", "tmax", "TMAX", "PKNCA pk.calc.tmax, first.tmax"),
    Parameter(
        "clast", _U, "last quantifiable level", "clast.obs", "CLST", "PKNCA pk.calc.clast.obs"
    ),
    Parameter("tlast", _DAY, "day of Clast", "tlast", "TLST", "PKNCA pk.calc.tlast"),
    Parameter(
        PARTIAL_AUC,
        _AUC,
        "AUC from day 0 to day `nca.partial_auc_end` (`--end`), the column named after that "
        "day; the level at the end interpolated with the interval's rule, C(0) = 0 when day 0 "
        "was not sampled",
        "aucint.last",
        "AUCINT",
        "PKNCA pk.calc.aucint.last",
        interval=True,
    ),
    Parameter(
        "auclast",
        _AUC,
        "AUC from day 0 to Tlast; needs a day-0 sample",
        "auclast",
        "AUCLST",
        "PKNCA pk.calc.auc.last",
    ),
    Parameter(
        "lambda_z",
        _RATE,
        "terminal elimination rate, log-linear regression on the last ≥ 3 points after Tmax "
        "with the best adjusted R²",
        "lambda.z",
        "LAMZ",
        _HALF_LIFE,
    ),
    Parameter("half_life", _DAY, "terminal half-life ln 2 / λz", "half.life", "LAMZHL", _HALF_LIFE),
    Parameter(
        "aucinf_obs",
        _AUC,
        "AUClast + Clast / λz",
        "aucinf.obs",
        "AUCIFO",
        "PKNCA pk.calc.auc.inf.obs",
    ),
    Parameter(
        "persistence_days",
        _DAY,
        "persistence: Tlast, the last day with a quantifiable level; 0 for a subject "
        "without any (non-responder, flagged)",
        source="docs/rules.md",
    ),
    Parameter(
        "persistence_censored",
        UnitKind.BOOLEAN,
        "`true` when the last sample is still quantifiable: the cells persist at least "
        "`persistence_days` (right-censored time to loss)",
        source="docs/rules.md; Kaplan & Meier 1958",
    ),
    Parameter(
        "n_obs", _COUNT, "samples used: non-missing, day ≥ 0, BLQ included", source="docs/rules.md"
    ),
    Parameter("n_blq", _COUNT, "of which BLQ", source="docs/rules.md"),
    Parameter(
        "flags",
        _TEXT,
        "reasons for empty values and notes on interpolation, separated by semicolons",
        source="PKNCA exclude",
    ),
    Parameter(
        "r_squared", UnitKind.FRACTION, "R² of the λz regression", "r.squared", "R2", _HALF_LIFE
    ),
    Parameter(
        "adj_r_squared",
        UnitKind.FRACTION,
        "adjusted R² of the λz regression",
        "adj.r.squared",
        "R2ADJ",
        _HALF_LIFE,
    ),
    Parameter(
        "lambda_z_n_points",
        _COUNT,
        "points in the λz regression",
        "lambda.z.n.points",
        "LAMZNPT",
        _HALF_LIFE,
    ),
    Parameter(
        "lambda_z_time_first",
        _DAY,
        "first day in the λz regression",
        "lambda.z.time.first",
        "LAMZLL",
        _HALF_LIFE,
    ),
    Parameter(
        "lambda_z_time_last",
        _DAY,
        "last day in the λz regression",
        "lambda.z.time.last",
        "LAMZUL",
        _HALF_LIFE,
    ),
    Parameter(
        "aucall",
        _AUC,
        "AUClast plus the triangle down to the next BLQ sample",
        "aucall",
        "AUCALL",
        "PKNCA pk.calc.auc.all",
    ),
    Parameter(
        "method",
        _TEXT,
        "AUC rule used: `lin-up/log-down`, `linear` or `lin-log`",
        source="PKNCA.options auc.method",
    ),
)

_STEIN = "Stein 2019"
_FIT = "ckpk fit, docs/rules.md"
_SE = "observed information, delta method"
_REDUCED_EMPTY = "; empty for the reduced model"

#: The model's estimates with a standard error column ``<name>_se``, in column order.
MODEL_ESTIMATES: tuple[Parameter, ...] = (
    Parameter("cmax", _U, "model peak level", source=_STEIN, theta="log_cmax"),
    Parameter("tmax", _DAY, "model day of the peak", source=_STEIN, theta="log_tmax"),
    Parameter(
        "foldx",
        UnitKind.UNITLESS,
        "fold expansion from day 0 (level Cmax / foldx) to the peak",
        source=_STEIN,
        theta="log_foldx_m1",
    ),
    Parameter(
        "rho",
        _RATE,
        "expansion rate constant ln(foldx) / Tmax",
        source=_STEIN,
        needs=("foldx", "tmax"),
    ),
    Parameter("alpha", _RATE, "contraction rate constant", source=_STEIN, theta="log_alpha"),
    Parameter(
        "beta",
        _RATE,
        "persistence rate constant" + _REDUCED_EMPTY,
        source=_STEIN,
        theta="logit_beta_ratio",
    ),
    Parameter(
        "fb",
        UnitKind.FRACTION,
        "fraction of Cmax in the persistence phase (0–1); 0 for the reduced model",
        source=_STEIN,
        theta="logit_fb",
    ),
    Parameter(
        PARTIAL_AUC,
        _AUC,
        "model AUC from day 0 to `nca.partial_auc_end`, exact integral of the curve",
        source=_STEIN,
        interval=True,
        # Not β: the persistence phase holds ~1 % of Cmax (Fb), and β changes its area
        # over the first weeks by a few % of the AUC at most.
        needs=("cmax", "tmax", "foldx", "alpha", "fb"),
    ),
)
_ESTIMATE = {p.column: p for p in MODEL_ESTIMATES}


def _standard_error(estimate: Parameter) -> Parameter:
    return Parameter(
        estimate.column + "_se",
        estimate.unit,
        f"standard error of `{estimate.column}`; empty where the value is fixed",
        source=_SE,
    )


#: ``pk/model_fits.tsv`` in column order (docs/rules.md "Kinetic model").
MODEL_PARAMETERS: tuple[Parameter, ...] = (
    Parameter("subject_id", _TEXT, "subject", source="pk/concentrations.tsv", label=True),
    Parameter("analyte", _TEXT, "analyte", source="pk/concentrations.tsv", label=True),
    Parameter(
        "converged",
        UnitKind.BOOLEAN,
        "`true` when the fit reached a likelihood maximum and every value reported is "
        "estimable (a value the data cannot determine is empty, with the reason in `flags`); "
        "`false`, every value empty, with the reason in `flags` (e.g. all BLQ: non-responder; "
        "fewer than 4 quantifiable or 7 samples in all; no observation before or no decline "
        "after the peak; the search did not converge)",
        source=_FIT,
    ),
    _ESTIMATE["cmax"],
    _ESTIMATE["tmax"],
    _ESTIMATE["rho"],
    Parameter(
        "doubling_time", _DAY, "expansion doubling time ln 2 / ρ", source=_STEIN, same_as="rho"
    ),
    _ESTIMATE["alpha"],
    _ESTIMATE["beta"],
    _ESTIMATE["fb"],
    _ESTIMATE[PARTIAL_AUC],
    Parameter(
        "aic",
        UnitKind.UNITLESS,
        "Akaike information criterion 2·NLL + 2k of the reported model (log-scale likelihood; "
        "k counts σ)",
        source=_FIT,
    ),
    Parameter(
        "flags",
        _TEXT,
        "reasons and warnings, separated by semicolons: model chosen, estimates the data "
        "cannot determine (left empty, with why) and what follows from them, Tmax on a "
        "sampling day, peak between samples, poor fit, poorly determined (SE > 50 %) "
        "estimates",
        source=_FIT,
    ),
    _ESTIMATE["foldx"],
    Parameter(
        "sigma",
        UnitKind.UNITLESS,
        "residual SD on the natural-log scale (about the CV of a reading), corrected for "
        "degrees of freedom: σ_ML · √(n / (n − k))",
        source=_FIT,
        theta="log_sigma",
    ),
    Parameter("contraction_half_life", _DAY, "ln 2 / α", source=_STEIN, same_as="alpha"),
    Parameter(
        "persistence_half_life",
        _DAY,
        "ln 2 / β" + _REDUCED_EMPTY,
        source=_STEIN,
        same_as="beta",
    ),
    Parameter("n_obs", _COUNT, "samples used: quantifiable + BLQ, day ≥ 0", source=_FIT),
    Parameter("n_blq", _COUNT, "of which BLQ", source=_FIT),
    Parameter(
        "model",
        _TEXT,
        "`full` (two-phase decline) or `reduced` (Fb = 0, one-phase decline), chosen by AICc",
        source=_FIT,
    ),
    Parameter(
        "aicc",
        UnitKind.UNITLESS,
        "AICc = AIC + 2k(k+1)/(n−k−1), the small-sample criterion that chose the model",
        source="Hurvich & Tsai 1989; Burnham & Anderson 2002",
    ),
    *(_standard_error(p) for p in MODEL_ESTIMATES),
    Parameter(
        "unit",
        _TEXT,
        "the analyte's unit U (of `cmax`; the AUC is U·day)",
        source="pk/concentrations.tsv",
        label=True,
    ),
)

TABLES: dict[str, tuple[str, tuple[Parameter, ...]]] = {
    "nca": ("pk/nca.tsv", NCA_PARAMETERS),
    "model": ("pk/model_fits.tsv", MODEL_PARAMETERS),
}


def find_parameter(table: str, column: str) -> Parameter:
    """The entry of ``column`` (a template such as :data:`PARTIAL_AUC`) in ``table``."""
    return {p.column: p for p in TABLES[table][1]}[column]


#: The population fit (rule ``pk_popfit``, docs/rules.md "Population kinetics") reports per
#: subject these entries of the kinetic model, each a posterior median with its 95 %
#: credible interval: ``pk/population_subjects.tsv`` (columns in config/README.md).
POPULATION_SUBJECT_ESTIMATES: tuple[Parameter, ...] = tuple(
    find_parameter("model", column)
    for column in ("cmax", "tmax", PARTIAL_AUC, "alpha", "beta")
    + ("contraction_half_life", "persistence_half_life")
)
#: Columns of ``pk/population_fit.tsv``: one row per CAR T analyte and population
#: parameter (typical values, between-subject SDs, dose effect, σ; config/README.md).
POPULATION_FIT_COLUMNS: list[str] = [
    *("analyte", "parameter", "kind", "estimate", "ci95_low", "ci95_high", "unit"),
    *("converged", "rhat", "ess_bulk", "ess_tail", "flags", "prior"),
    *("n_subjects", "n_obs", "n_blq", "dose_covariate", "divergences"),
    *("chains", "draws_per_chain", "seed"),
]


def format_day(day: float) -> str:
    """A day as ckpk prints it in column names and messages (``%g``: 28, 7.5)."""
    return f"{float(day):g}"


def partial_auc_column(end: float = DEFAULT_PARTIAL_AUC_END) -> str:
    """``auc_0_28`` for day 28, ``auc_0_7.5`` for day 7.5."""
    return PARTIAL_AUC.replace("{end}", format_day(end))


def columns(parameters: Iterable[Parameter], end: float = DEFAULT_PARTIAL_AUC_END) -> list[str]:
    return [p.name(end) for p in parameters]


def nca_columns(end: float = DEFAULT_PARTIAL_AUC_END) -> list[str]:
    """Columns of ``pk/nca.tsv`` for a partial AUC ending on day ``end``."""
    return columns(NCA_PARAMETERS, end)


def model_fit_columns(end: float = DEFAULT_PARTIAL_AUC_END) -> list[str]:
    """Columns of ``pk/model_fits.tsv`` for a model AUC ending on day ``end``."""
    return columns(MODEL_PARAMETERS, end)


def result_columns(
    parameters: Iterable[Parameter], end: float = DEFAULT_PARTIAL_AUC_END
) -> list[str]:
    """The columns one profile's analysis fills (all but the labels)."""
    return [p.name(end) for p in parameters if not p.label]


def estimate_names(end: float = DEFAULT_PARTIAL_AUC_END) -> tuple[str, ...]:
    """The model estimates that get a standard error, in the order of their ``_se`` columns."""
    return tuple(columns(MODEL_ESTIMATES, end))


def pknca_columns(end: float = DEFAULT_PARTIAL_AUC_END) -> dict[str, str]:
    """PKNCA parameter name → ``pk/nca.tsv`` column, for every column PKNCA computes."""
    return {p.pknca: p.name(end) for p in NCA_PARAMETERS if p.pknca}


def empty_row(names: Iterable[str], **known: object) -> dict[str, object]:
    """A result row with every column in ``names`` empty (NaN) except ``known``."""
    row: dict[str, object] = dict.fromkeys(names, math.nan)
    row.update(known)
    return row
