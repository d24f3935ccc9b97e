"""Loading the gating strategy and naming its gates.

The strategy is either a GatingML 2.0 document (parsed by FlowKit, which validates it
against the ISAC schema) or a FlowJo 10 workspace (``.wsp``). A workspace holds one gate
tree per sample; ckpk applies one template to every FCS file of the trial, so it takes
the gate tree, transforms and compensation matrix of one sample of one sample group
(FlowKit stores FlowJo gates in the transformed space of that sample's transforms).

Compensation in a workspace follows FlowJo: a matrix the analyst defined in the workspace
is applied to every file, but FlowJo's "Acquisition-defined" matrix stands for the
spillover the cytometer wrote into each file ($SPILLOVER/SPILL), so every file is then
compensated with its own matrix, exactly as FlowJo does when files are added to a group.

Gates are named by path, ``/root/Lymphocytes/Singlets``, the form used in
``flow/gate_counts.tsv``; quadrants sit under their quadrant gate
(``/root/.../CD4vCD8/CD4+CD8-``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ckpk.cells import first_line
from ckpk.errors import ConfigError, InputError
from ckpk.flow import REQUIRED_GATE_KEYS
from ckpk.flow._flowkit_compat import custom_gates, gate_tree, gatingml_schema
from ckpk.flow.plan import GatingPlan

if TYPE_CHECKING:  # pragma: no cover - typing only
    import flowkit

log = logging.getLogger(__name__)

ALL_SAMPLES = "All Samples"  # FlowJo's built-in group holding every sample
# FlowJo's fixed name for the matrix it reads from an FCS file's own $SPILLOVER/SPILL. The
# workspace stores a copy per sample (the values of that sample's file), but FlowJo applies
# to each file the spillover written in that file. The name is reserved: FlowJo marks the
# matrix non-editable, and an edited copy gets another name (then a workspace matrix).
ACQUISITION_DEFINED = "Acquisition-defined"


def _is_flowjo_workspace(path: Path) -> bool:
    if path.suffix.lower() == ".wsp":
        return True
    with path.open("rb") as handle:
        head = handle.read(4096)
    return b"<Workspace" in head or b"flowJoVersion" in head


def _schema_reason(path: Path) -> str | None:
    """First GatingML 2.0 schema violation, worded for the person who wrote the file."""
    try:
        from lxml import etree

        gml_schema = gatingml_schema()  # the schema FlowKit validates with
        document = etree.parse(str(path))
        if gml_schema.validate(document):
            return None
        error = gml_schema.error_log.last_error
        return f"line {error.line}: {error.message}" if error is not None else None
    except Exception as error:  # noqa: BLE001 - only used to word the message
        return first_line(str(error)) or None


def load_strategy(path: str | Path, sample_group: str | None = None) -> flowkit.GatingStrategy:
    """The gating strategy in ``path``: GatingML 2.0 or a FlowJo 10 workspace.

    For a workspace, ``sample_group`` (config) chooses the FlowJo sample group; by default
    the first group other than "All Samples" that has gates, else "All Samples". One
    sample of that group, preferably one without sample-specific (custom) gates, gives
    the gate tree, transforms and compensation used for every file. What was chosen is
    logged and kept in ``strategy.ckpk_notes``.
    Raises :class:`InputError` naming the file when it cannot be used.
    """
    import flowkit  # deferred: ~2 s import

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: gating strategy file not found")
    try:
        is_wsp = _is_flowjo_workspace(path)
        with path.open("rb") as handle:
            head = handle.read(65536)
    except OSError as error:
        raise InputError(f"{path}: cannot read the gating strategy ({error})") from None
    if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
        # Neither GatingML 2.0 nor FlowJo workspaces use DTDs; an entity declaration could
        # make the XML parser read other local files (XXE), so such files are refused.
        raise InputError(f"{path}: XML with a DOCTYPE/ENTITY declaration is not accepted")
    if is_wsp:
        strategy = _load_workspace(path, sample_group)
    else:
        if sample_group is not None:
            log.info("%s: sample_group ignored, not a FlowJo workspace", path)
        try:
            strategy = flowkit.parse_gating_xml(str(path))
        except Exception as error:  # noqa: BLE001 - lxml/FlowKit raise many types
            reason = _schema_reason(path) or first_line(error)
            raise InputError(f"{path}: not a usable GatingML 2.0 file ({reason})") from None
        strategy.ckpk_notes = [f"GatingML 2.0 strategy {path.name}"]
    if not strategy.get_gate_ids():
        raise InputError(f"{path}: the gating strategy defines no gates")
    # Where the strategy came from, for its compiled plan (ckpk.flow.plan_compile).
    strategy.ckpk_source = str(path)
    strategy.ckpk_sample_group = sample_group or None
    return strategy


def _load_workspace(path: Path, sample_group: str | None) -> flowkit.GatingStrategy:
    import flowkit

    try:
        workspace = flowkit.parse_wsp(str(path))
    except Exception as error:  # noqa: BLE001 - FlowKit's workspace parser raises many types
        raise InputError(
            f"{path}: not a usable FlowJo 10 workspace ({first_line(error)})"
        ) from None
    groups: dict = workspace["groups"]
    samples: dict = workspace["samples"]
    if sample_group is not None:
        if sample_group not in groups:
            raise InputError(
                f"{path}: sample group '{sample_group}' is not in the workspace; groups are "
                f"{', '.join(repr(g) for g in groups) or 'none'}"
            )
        group = sample_group
    else:
        with_gates = [g for g, d in groups.items() if g != ALL_SAMPLES and d["gates"]]
        group = with_gates[0] if with_gates else ALL_SAMPLES
        if group not in groups:
            raise InputError(f"{path}: the workspace has no sample groups")
    members = [s for s in groups[group]["samples"] if s in samples]
    if not members:
        raise InputError(
            f"{path}: sample group '{group}' has no samples, so it holds no complete gate "
            "tree (FlowJo keeps the full tree, transforms and compensation per sample)"
        )
    # A sample without custom gates carries the group's template gates unchanged.
    plain = [s for s in members if not samples[s]["custom_gate_ids"]]
    template = plain[0] if plain else members[0]
    strategy = samples[template]["gating_strategy"]
    notes = [f"FlowJo workspace {path.name}: group '{group}', gate tree of sample '{template}'"]
    if not plain:
        notes.append(
            f"sample '{template}' has sample-specific gates; they are used as the template"
        )
    comp = samples[template]["compensation"]
    if comp is not None and is_acquisition_defined(comp["matrix_name"]):
        channels = _use_each_files_spillover(strategy, comp["matrix_name"])
        notes.append(
            f"compensation: FlowJo's '{comp['matrix_name']}' matrix, so each file is "
            "compensated with its own $SPILLOVER, as FlowJo does"
            + (f" (gated compensated channels: {', '.join(channels)})" if channels else "")
        )
    elif comp is not None:
        notes.append(
            f"compensation matrix '{comp['matrix_name']}' defined in the workspace is applied "
            "to every file"
        )
    for note in notes:
        log.info("%s", note)
    strategy.ckpk_notes = notes
    return strategy


def is_acquisition_defined(matrix_name: str) -> bool:
    """True for FlowJo's "Acquisition-defined" matrix: the file's own $SPILLOVER (FlowJo 10
    workspaces write it per sample as ``<transforms:spilloverMatrix name="Acquisition-defined"
    editable="0">``; flowWorkspace/CytoML read and write it the same way)."""
    return matrix_name.strip().lower() == ACQUISITION_DEFINED.lower()


def _all_gates(strategy: flowkit.GatingStrategy) -> Iterator[object]:
    """Every gate object of the tree, sample-specific (custom) gates included."""
    for node in gate_tree(strategy).descendants:
        yield node.gate
        yield from custom_gates(node)


def _use_each_files_spillover(strategy: flowkit.GatingStrategy, matrix_id: str) -> list[str]:
    """Point every dimension compensated with workspace matrix ``matrix_id`` at the file's own
    spillover instead (GatingML 2.0 §5.2 ``compensation-ref="FCS"``, which FlowKit resolves
    per sample from $SPILLOVER/SPILL), and drop the template sample's copy of the matrix.

    Returns the channels so compensated; they are kept in
    ``strategy.ckpk_file_spillover_channels`` for the per-file checks.
    """
    channels: list[str] = []
    for gate in _all_gates(strategy):
        for dim in getattr(gate, "dimensions", None) or []:
            if getattr(dim, "compensation_ref", None) != matrix_id:
                continue
            dim.compensation_ref = "FCS"
            channel = getattr(dim, "dimension_ref", None) or dim.id
            if channel not in channels:
                channels.append(channel)
    strategy.comp_matrices.pop(matrix_id, None)
    strategy.clear_cache()
    strategy.ckpk_file_spillover_channels = channels
    return channels


def file_spillover_channels(strategy: flowkit.GatingStrategy) -> list[str]:
    """Channels that a FlowJo strategy with an "Acquisition-defined" matrix compensates with
    each file's own $SPILLOVER; empty for every other strategy."""
    return list(getattr(strategy, "ckpk_file_spillover_channels", []))


def _path_string(parts: tuple[str, ...]) -> str:
    return "/" + "/".join(parts)


def iter_gates(strategy: flowkit.GatingStrategy) -> Iterator[tuple[str, object, str]]:
    """(gate path, gate object, parent path) for every gate in tree (pre-)order.

    Quadrants are yielded under their quadrant gate with the Quadrant object; their parent
    path is the quadrant gate's parent, whose events they divide.
    """
    import flowkit

    root = gate_tree(strategy)
    stack = list(reversed(root.children))
    while stack:
        node = stack.pop()
        parts = tuple(n.name for n in node.path)
        parent = node.parent
        if isinstance(getattr(parent, "gate", None), flowkit.gates.QuadrantGate):
            parent = parent.parent
        yield _path_string(parts), node.gate, _path_string(tuple(n.name for n in parent.path))
        stack.extend(reversed(node.children))


def gate_paths(strategy: flowkit.GatingStrategy | GatingPlan) -> list[str]:
    """Every gate path of the strategy (or of its compiled plan) in tree order (quadrant
    gates themselves excluded, since only their quadrants hold events)."""
    if isinstance(strategy, GatingPlan):
        return list(strategy.paths)
    import flowkit

    return [
        path
        for path, gate, _parent in iter_gates(strategy)
        if not isinstance(gate, flowkit.gates.QuadrantGate)
    ]


def _dimension_refs(gate: object) -> Iterator[tuple[str, str | None]]:
    for dim in getattr(gate, "dimensions", None) or []:
        if hasattr(dim, "ratio_ref"):
            yield dim.ratio_ref, dim.compensation_ref  # resolved through the transform
        elif hasattr(dim, "dimension_ref"):
            yield dim.dimension_ref, dim.compensation_ref
        else:
            yield dim.id, dim.compensation_ref


def required_dimensions(strategy: flowkit.GatingStrategy) -> list[tuple[str, str | None]]:
    """(channel or fluorochrome, compensation ref) pairs every gate needs, custom gates too.

    Ratio dimensions are replaced by the two raw channels their ratio transform divides.
    """
    import flowkit

    needed: list[tuple[str, str | None]] = []
    for gate in _all_gates(strategy):
        for dim_id, comp_ref in _dimension_refs(gate):
            # Only a ratio transform stands for other channels. (Every FlowKit transform has
            # a ``dimensions`` list, empty except for ratios, and FlowJo strategies key their
            # transforms by channel name, so the channel itself must not be dropped.)
            transform = strategy.transformations.get(dim_id)
            if isinstance(transform, flowkit.transforms.RatioTransform):
                pairs = [(d, None) for d in transform.dimensions]
            else:
                pairs = [(dim_id, comp_ref)]
            for pair in pairs:
                if pair not in needed:
                    needed.append(pair)
    return needed


def resolve_gate(strategy: flowkit.GatingStrategy | GatingPlan, name: str) -> str:
    """The gate path for ``name``: a gate name ("CAR+") or a path ("Singlets/CD3+/CAR+",
    "/root/.../CAR+"). Raises :class:`KeyError` (missing) or :class:`LookupError`
    (ambiguous) with the candidates in the message."""
    paths = gate_paths(strategy)
    text = name.strip()
    by_name = [p for p in paths if p.rsplit("/", 1)[-1] == text]
    if len(by_name) == 1:
        return by_name[0]
    if "/" in text:
        wanted = text.strip("/")
        wanted = wanted[len("root/") :] if wanted.startswith("root/") else wanted
        exact = [p for p in paths if p == "/root/" + wanted]
        if exact:
            return exact[0]
        by_suffix = [p for p in paths if p.endswith("/" + wanted)]
        if len(by_suffix) == 1:
            return by_suffix[0]
        if by_suffix:
            by_name = by_suffix
    if by_name:
        raise LookupError(
            f"gate '{name}' is ambiguous: {', '.join(by_name)}; give the full path instead"
        )
    raise KeyError(f"gate '{name}' is not in the gating strategy; its gates are {', '.join(paths)}")


def resolve_gates(
    strategy: flowkit.GatingStrategy | GatingPlan,
    names: Mapping[str, str | None],
    required: tuple[str, ...] = REQUIRED_GATE_KEYS,
    source: str = "flow",
) -> dict[str, str | None]:
    """Gate paths for the gate names given in config (``car_gate``, ``cd3_gate``, ...).

    Empty or absent optional names give ``None``. A name that is missing, ambiguous or
    required but unset raises :class:`ConfigError` naming the key (``flow.car_gate``).
    """
    resolved: dict[str, str | None] = {}
    keys = list(dict.fromkeys([*required, *names]))
    for key in keys:
        value = names.get(key)
        if value is None or not str(value).strip():
            if key in required:
                raise ConfigError(f"{source}.{key}: no gate name given (it is required)")
            resolved[key] = None
            continue
        try:
            resolved[key] = resolve_gate(strategy, str(value))
        except (KeyError, LookupError) as error:
            message = error.args[0] if error.args else str(error)
            raise ConfigError(f"{source}.{key}: {message}") from None
    return resolved
