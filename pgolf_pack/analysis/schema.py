"""The types of pgolf-analyze's report.json, one TypedDict per object (docs/ANALYZE.md's
"report.json" table is their documentation; tests/test_analyze_schema.py checks that the two
name the same fields with the same types and that the reports hold nothing else).

The reports are built as plain dicts and serialised as they are; these types give every
field a name a reader can look up, an editor can complete and a type checker can follow.
"""

from __future__ import annotations

from typing import Any, TypedDict


class OptionsSchemes(TypedDict, total=False):
    """`options.schemes.[]`."""

    id: str  # the scheme's id in `tensors[].schemes`
    spec: str  # its spec in pgolf-pack's grammar


class Options(TypedDict, total=False):
    """`options`."""

    budget: int  # `--budget` (checkpoints)
    code_bytes: int  # bytes of the `--code` files
    code_files: list[Any]  # the `--code` paths
    small_numel: int  # `--small-numel` (checkpoints)
    sample_symbols: int | None  # `--sample`; null with `--full`
    buckets: int  # `--buckets`
    schemes: list[OptionsSchemes]  # the analysed schemes, without `planner` (checkpoints)
    compressors: list[Any]  # `zstd22`, `lzma9`, `brotli11`
    sensitivities: list[Any]  # `[pattern, weight]` pairs from `--sensitivity` (checkpoints)


class SummaryOverheadBreakdown(TypedDict, total=False):
    """`summary.overhead_breakdown`."""

    artifact_header_bytes: int  # magic, version, manifest length, record count, CRC
    record_bytes: float  # manifest records
    frame_header_bytes: float  # rANS frame headers (symbols and scales)
    table_bytes: float  # frequency tables (symbols and scales)
    payload_excess_bytes: float  # coded payloads above their floors
    stored_excess_bytes: float  # blobs of `stored` tensors (passthrough values, small tensors) above...


class SummarySymbolsGeneric(TypedDict, total=False):
    """`summary.symbols.generic`."""

    method: str  # `stream` (one model-level sample stream) or `per_tensor` (`--full`)
    sample_symbols: int  # symbols compressed
    symbols: int  # symbols the sizes stand for
    exact: bool  # every symbol was compressed
    containers: list[Any]  # `int8`, `int16`
    zstd22: int  # zstd level 22
    lzma9: int  # xz, preset 9
    brotli11: int  # brotli quality 11


class SummarySymbols(TypedDict, total=False):
    """`summary.symbols`."""

    rans_frame_bytes: int  # Σ symbols frames
    floor_bytes: float  # Σ symbols floors
    best_generic: str | None  # the smallest of the generic compressors
    best_generic_bytes: int | None  # its size
    generic: SummarySymbolsGeneric | None  # the reference scheme's generic entry (as `schemes[].totals.generic`)


class SummaryContextModellingPerKindEntry(TypedDict, total=False):
    """`summary.context_modelling.per_kind.*`."""

    tensors: int  # tensors the kind applies to
    saving_bound_bytes: float  # order-0 floor − plug-in conditional entropy (free tables)
    saving_priced_bytes: float | None  # order-0 priced − context priced (real tables)


class SummaryContextModelling(TypedDict, total=False):
    """`summary.context_modelling`."""

    best: str | None  # the context kind with the largest priced saving
    saving_priced_bytes: float | None  # its priced saving (may be negative: then none pays)
    per_kind: dict[str, SummaryContextModellingPerKindEntry]  # `row`, `scale_bucket`, `previous_symbol`, `layer_delta`


class Summary(TypedDict, total=False):
    """`summary`."""

    reference_scheme: str  # `planner`, `stored` (artifacts), or a scheme id when no plan fits
    tensors: int  # tensors in the input
    parameters: int  # their elements
    coded_tensors: int  # tensors coded as symbols under the reference
    coded_weights: int  # their weights
    artifact_bytes: int  # the reference artifact's exact size (for an artifact: the file)
    code_bytes: int  # artifacts: `--code` bytes
    total_bytes: int  # artifacts: file + code
    floor_bytes: float  # order-0 floor of everything coded: symbols, scale codes, passthroug...
    overhead_bytes: float  # artifact − floor
    overhead_pct: float | None  # overhead / floor, percent
    overhead_breakdown: SummaryOverheadBreakdown  # the overhead, split; the parts add up to `overhead_bytes`
    symbols: SummarySymbols  # the coded symbols against generic compressors
    context_modelling: SummaryContextModelling  # what context models could save over the reference scheme's tensors


class Sections(TypedDict, total=False):
    """`sections`."""

    magic_and_version_bytes: int  # `PGPK` and the version byte
    manifest_length_bytes: int  # the manifest-length varint
    record_count_bytes: int  # the record-count varint
    record_bytes: int  # all manifest records
    blob_bytes: int  # all blobs
    crc_bytes: int  # the CRC-32C
    total_bytes: int  # the file


class Planner(TypedDict, total=False):
    """`planner`."""

    feasible: bool  # a plan fits
    budget: int  # the budget
    estimated_bytes: int | None  # the planner's artifact estimate (with an upper bound for the file h...
    estimated_damage: float | None  # Σ sensitivity × squared error of the plan
    specs: dict[str, str] | None  # tensor name → chosen spec
    error: str | None  # why no plan fits


class RateLossPoints(TypedDict, total=False):
    """`rate_loss.points.[]`."""

    budget: int  # the budget solved for
    total_bytes: int  # estimated artifact + code
    damage: float  # its damage


class RateLossUniform(TypedDict, total=False):
    """`rate_loss.uniform.[]`."""

    spec: str  # `int8:max`, `int6:std12.85`
    total_bytes: int  # estimated artifact + code
    damage: float  # its damage


class RateLossChosen(TypedDict, total=False):
    """`rate_loss.chosen`."""

    budget: int  # `--budget`
    total_bytes: int  # estimated artifact + code
    damage: float  # its damage


class RateLoss(TypedDict, total=False):
    """`rate_loss`."""

    points: list[RateLossPoints]  # one solved plan per budget
    uniform: list[RateLossUniform]  # every tensor at one spec (tensors without that candidate lossless)
    chosen: RateLossChosen | None  # the point at `--budget` (null when infeasible)
    smallest_total_bytes: int  # the smallest artifact + code any plan reaches


class SchemesTotalsGeneric(TypedDict, total=False):
    """`schemes.[].totals.generic`."""

    method: str  # `stream` or `per_tensor`
    sample_symbols: int  # symbols compressed
    symbols: int  # symbols the sizes stand for
    exact: bool  # every symbol compressed
    containers: list[Any]  # `int8`, `int16`
    zstd22: int  # zstd-22
    lzma9: int  # lzma-9
    brotli11: int  # brotli-11


class SchemesTotalsContextEntry(TypedDict, total=False):
    """`schemes.[].totals.context.*`."""

    tensors: int  # tensors the kind applies to
    weights: int  # their weights
    order0_floor_bytes: float  # their order-0 floors
    bound_bytes: float  # their plug-in conditional entropies, bytes
    saving_bound_bytes: float  # floor − bound
    order0_priced_bytes: float | None  # order-0 model with its table priced
    priced_bytes: float | None  # context model with its tables priced (null if any tensor could not...
    saving_priced_bytes: float | None  # order-0 priced − context priced
    rans_frame_bytes: int | None  # `scale_bucket`: Σ real bucket-context frames
    saving_measured_bytes: int | None  # `scale_bucket`: Σ order-0 frames − Σ bucket frames


class SchemesTotals(TypedDict, total=False):
    """`schemes.[].totals`."""

    tensors: int  # tensors coded as symbols
    passthrough_tensors: int  # analysed tensors this scheme stores as values (planner only)
    weights: int  # their weights
    total_bytes: int  # Σ record + frame + scales
    record_bytes: int  # Σ records
    frame_bytes: int  # Σ symbols frames
    frame_header_bytes: int  # Σ their headers
    table_bytes: int  # Σ their tables
    payload_bytes: int  # Σ their payloads
    scale_bytes: int  # Σ scale blobs
    scale_floor_bytes: float  # Σ scale floors
    floor_bytes: float  # Σ symbol floors
    overhead_bytes: float  # frames − floors
    overhead_pct: float | None  # percent of the floors
    entropy_bits_per_weight: float | None  # floor bits per weight
    bits_per_weight: float | None  # all-in (`total_bytes`) bits per weight
    generic: SchemesTotalsGeneric | None  # generic compressors (fields as `summary.symbols.generic`)
    context: dict[str, SchemesTotalsContextEntry]  # per context kind (`row`, `scale_bucket`, `previous_symbol`, `layer_...
    damage: float | None  # Σ squared error (checkpoints)
    relative_error: float | None  # damage / Σ w²


class Schemes(TypedDict, total=False):
    """`schemes.[]`."""

    id: str  # scheme id (`stored` for artifacts)
    spec: str  # its spec (`planner`, `stored`: per tensor)
    totals: SchemesTotals  # sums over those tensors


class Histograms(TypedDict, total=False):
    """`histograms.[]`."""

    tensor: str  # tensor name
    scheme: str  # scheme id
    spec: str  # the spec
    offset: int  # the value of `counts[0]`
    counts: list[Any]  # counts of offset, offset + 1, ...
    entropy_bits_per_weight: float  # H₀


class TensorsStats(TypedDict, total=False):
    """`tensors.[].stats`."""

    mean: float  # mean
    std: float  # standard deviation
    sum_squares: float  # Σ w²
    absmax: float  # max |w|
    excess_kurtosis: float | None  # whole tensor (0 for a Gaussian)
    row_excess_kurtosis: float | None  # after standardising each row
    outlier_share: float | None  # share with |w| > `outlier_sigmas` row std
    outlier_sigmas: float  # 4


class TensorsStoredFrame(TypedDict, total=False):
    """`tensors.[].stored.frame`."""

    total_bytes: int  # the frame (with its column-group map, if any)
    header_bytes: int  # its header
    table_bytes: int  # its tables (and its column-group map, if any)
    payload_bytes: int  # its payload
    tables: int  # its tables, counted
    column_groups_bytes: int  # the column-group map's frame (0: one table for the tensor)
    precision: int  # frequency precision, bits
    lanes: int  # interleaved rANS states
    chunks: int  # independently decodable chunks


class TensorsStored(TypedDict, total=False):
    """`tensors.[].stored`."""

    spec: str  # the spec or scheme (`fp16`, `fp32`, `bf16`, `raw`, or a quantized s...
    passthrough: bool  # stored as values; false for a small tensor the planner quantized
    encoding: str  # `bytes` (raw little-endian values), `rans16` (rANS frame of 16-bit...
    total_bytes: int  # record + blob
    blob_bytes: int  # the values blob (quantized: symbols and scales)
    record_bytes: int  # the manifest record
    floor_bytes: float  # word-coded: order-0 entropy of the 16-bit words; raw: the blob size...
    frame: TensorsStoredFrame | None  # the word or symbols frame's split (as `tensors[].schemes.*.frame`)
    damage: float | None  # squared error (checkpoints)


class TensorsSchemesFrame(TypedDict, total=False):
    """`tensors.[].schemes.*.frame`."""

    total_bytes: int  # the frame, with its column-group map if the writer chose column con...
    header_bytes: int  # header: fixed fields, chunk directory, CRC
    table_bytes: int  # serialised frequency tables, plus the column-group map (side inform...
    payload_bytes: int  # rANS states and words
    tables: int  # tables in the frame (column groups: one per group)
    column_groups_bytes: int  # the column-group map's frame (0: one table for the tensor)
    precision: int  # frequency precision, bits
    lanes: int  # interleaved rANS states
    chunks: int  # independently decodable chunks


class TensorsSchemesScales(TypedDict, total=False):
    """`tensors.[].schemes.*.scales`."""

    format: str  # `fp16` or `sB` (minifloat codes, B mantissa bits)
    bytes: int  # the blob
    floor_bytes: float  # order-0 entropy of the codes (fp16: of the 16-bit words)
    header_bytes: int  # frame header (0 for fp16)
    table_bytes: int  # frame tables (0 for fp16)
    payload_bytes: int  # frame payload (fp16: the blob)


class TensorsSchemesGeneric(TypedDict, total=False):
    """`tensors.[].schemes.*.generic`."""

    container: str  # `int8` or `int16`
    zstd22: int  # zstd-22
    lzma9: int  # lzma-9
    brotli11: int  # brotli-11


class TensorsSchemesContextEntry(TypedDict, total=False):
    """`tensors.[].schemes.*.context.*`."""

    entropy_bits_per_weight: float  # plug-in conditional entropy (free tables)
    saving_bound_bytes: float  # (H₀ − it) × symbols / 8
    priced_bytes: float | None  # payload + tables with real tables (null when too many cells to price)
    priced_table_bytes: int | None  # the tables' part
    contexts: int  # contexts used (`row`, `scale_bucket`, `previous_symbol`)
    rans_frame_bytes: int | None  # `scale_bucket`: a real frame with one table per bucket
    previous: str  # `layer_delta`: the tensor subtracted


class TensorsSchemesContext(TypedDict, total=False):
    """`tensors.[].schemes.*.context`: one entry per context kind, and the order-0 reference."""

    order0_priced_bytes: float | None  # order-0 model, table priced
    row: TensorsSchemesContextEntry  # H(X | row)
    scale_bucket: TensorsSchemesContextEntry  # H(X | row-scale bucket)
    previous_symbol: TensorsSchemesContextEntry  # H(X | previous symbol in the row)
    layer_delta: TensorsSchemesContextEntry | None  # H(X − X of the layer before); null without one


class TensorsSchemesEntry(TypedDict, total=False):
    """`tensors.[].schemes.*`."""

    spec: str  # the exact spec (`int6:std12.85:s5`; artifacts: `int6:s5`)
    passthrough: bool  # stored as values (only the planner's choice can be)
    encoding: str  # passthrough: as `tensors[].stored.encoding`
    blob_bytes: int  # passthrough: the values blob
    total_bytes: int  # record + symbols frame + scales (passthrough: record + blob)
    record_bytes: int  # the manifest record
    bits_per_weight: float  # 8 × total_bytes / weights
    symbols: int  # symbols coded
    min: int  # smallest symbol
    max: int  # largest symbol
    distinct: int  # distinct symbols
    entropy_bits_per_weight: float  # H₀, order-0 entropy
    floor_bytes: float  # H₀ × symbols / 8 (passthrough: as `stored.floor_bytes`)
    frame: TensorsSchemesFrame | None  # the symbols frame (passthrough: the word frame or null)
    overhead_bytes: float  # frame − floor
    overhead_pct: float | None  # percent of the floor
    scales: TensorsSchemesScales  # the row-scale blob
    generic: TensorsSchemesGeneric | None  # `--full` only: exact generic sizes of this tensor's symbols
    context: TensorsSchemesContext  # context-model bounds
    damage: float | None  # Σ squared error (checkpoints)
    relative_error: float | None  # damage / Σ w²


class Tensors(TypedDict, total=False):
    """`tensors.[]`."""

    name: str  # its name
    role: str  # the name with its layer index as `*` (`blocks.*.mlp.fc.weight`)
    layer: int | None  # the layer index
    shape: list[Any]  # its shape
    numel: int  # its elements
    dtype: str  # its dtype (`float32`, `bfloat16`, ...)
    analysed: bool  # has `schemes` (else `stored`)
    planner_spec: str | None  # the planner's choice (checkpoints with a plan)
    stats: TensorsStats | None  # weight statistics (checkpoints, float tensors)
    stored: TensorsStored  # how a non-analysed tensor is stored (the planner's choice; fp16/raw...
    schemes: dict[str, TensorsSchemesEntry]  # scheme id → this tensor under that scheme


class Report(TypedDict, total=False):
    """report.json, top level."""

    format: str  # `pgolf-analyze/1`
    kind: str  # `checkpoint` or `artifact`
    pgolf_pack_version: str  # the version that wrote the report
    input: str  # the input path as given
    input_bytes: int | None  # the input file's size
    plots: list[Any]  # PNG file names written beside the report
    options: Options  # the options the report was made with
    summary: Summary  # the reference artifact, top of report.md
    sections: Sections  # artifacts: the file's bytes by section; the parts add up to `total_...
    planner: Planner  # checkpoints: the planner at `--budget`
    rate_loss: RateLoss  # checkpoints: the planner's rate-loss curve
    schemes: list[Schemes]  # per scheme, totals over the tensors it codes as symbols
    histograms: list[Histograms]  # representative tensors' symbol histograms (the plot's data)
    tensors: list[Tensors]  # every tensor, in file order
