// bindings.cpp: the only file that knows Python. Converts buffers, releases the GIL around
// every loop over symbols, and maps CodecError onto pgolf_pack.errors.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <string>

#include "crc32c.hpp"
#include "errors.hpp"
#include "frame.hpp"
#include "freq_table.hpp"

namespace py = pybind11;
using namespace pgolf;

#ifndef PGOLF_VERSION
#define PGOLF_VERSION "0.0.0"
#endif

namespace {

DType dtype_of(const py::array& a) {
    const py::dtype d = a.dtype();
    const char kind = d.kind();
    const auto size = d.itemsize();
    if (kind == 'i') {
        if (size == 1) return DType::Int8;
        if (size == 2) return DType::Int16;
        if (size == 4) return DType::Int32;
        if (size == 8) return DType::Int64;
    } else if (kind == 'u') {
        if (size == 1) return DType::UInt8;
        if (size == 2) return DType::UInt16;
        if (size == 4) return DType::UInt32;
        if (size == 8) return DType::UInt64;
    }
    throw CodecError(Status::InvalidArgument,
                     "symbols must be an integer array (int8..int64, uint8..uint64), got dtype " +
                         std::string(py::str(d)));
}

py::dtype numpy_dtype(DType d) {
    switch (d) {
        case DType::Int8: return py::dtype::of<int8_t>();
        case DType::UInt8: return py::dtype::of<uint8_t>();
        case DType::Int16: return py::dtype::of<int16_t>();
        case DType::UInt16: return py::dtype::of<uint16_t>();
        case DType::Int32: return py::dtype::of<int32_t>();
        case DType::UInt32: return py::dtype::of<uint32_t>();
        case DType::Int64: return py::dtype::of<int64_t>();
        case DType::UInt64: return py::dtype::of<uint64_t>();
    }
    throw CodecError(Status::BadHeader, "unknown dtype");
}

Kernel kernel_of(const std::string& name) {
    if (name == "auto") return Kernel::Auto;
    if (name == "scalar") return Kernel::Scalar;
    if (name == "avx2") return Kernel::Avx2;
    if (name == "avx512") return Kernel::Avx512;
    if (name == "search") return Kernel::Search;
    throw CodecError(Status::InvalidArgument, "unknown kernel '" + name + "' (auto, scalar, avx2, avx512, search)");
}

using ContextArray = py::array_t<uint16_t, py::array::c_style | py::array::forcecast>;
using CountArray = py::array_t<uint64_t, py::array::c_style | py::array::forcecast>;
using FreqArray = py::array_t<uint32_t, py::array::c_style | py::array::forcecast>;

struct Bytes {  // a read-only view of any contiguous bytes-like object
    py::buffer_info info;
    explicit Bytes(const py::buffer& b) : info(b.request()) {
        if (info.ndim != 1 || info.itemsize != 1 || (info.ndim == 1 && info.strides[0] != 1))
            throw CodecError(Status::InvalidArgument, "expected contiguous bytes");
    }
    const uint8_t* data() const { return static_cast<const uint8_t*>(info.ptr); }
    size_t size() const { return size_t(info.size); }
};

py::bytes to_bytes(const std::vector<uint8_t>& v) {
    return py::bytes(reinterpret_cast<const char*>(v.data()), v.size());
}

ContextSpec context_spec(const std::optional<ContextArray>& ids, uint64_t run, uint64_t num_tables) {
    ContextSpec c;
    if (ids) {
        if (ids->ndim() != 1) throw CodecError(Status::InvalidArgument, "contexts must be a 1-D array");
        if (run == 0) throw CodecError(Status::InvalidArgument, "context_run must be >= 1 when contexts are given");
        c.ids = ids->data();
        c.count = uint64_t(ids->size());
        c.run = run;
        c.num_tables = num_tables;
    }
    return c;
}

TableSet table_set(const std::vector<FreqArray>& freqs, unsigned precision) {
    TableSet t;
    t.precision = precision;
    t.alphabet = freqs.empty() ? 0 : size_t(freqs[0].size());
    for (const auto& f : freqs) {
        if (size_t(f.size()) != t.alphabet) throw CodecError(Status::InvalidArgument, "tables must share one alphabet size");
        t.runs.push_back(TableRun::from_dense(f.data(), size_t(f.size())));
    }
    return t;
}

py::dict frame_dict(const Frame& f) {
    py::dict d;
    d["dtype"] = numpy_dtype(f.dtype);
    py::tuple shape(f.shape.size());
    for (size_t i = 0; i < f.shape.size(); ++i) shape[i] = f.shape[i];
    d["shape"] = shape;
    d["offset"] = f.offset;
    d["alphabet"] = f.tables.alphabet;
    d["precision"] = f.tables.precision;
    py::list tables;  // (first, frequencies of the nonzero range): dense would cost T x K
    for (const auto& t : f.tables.runs)
        tables.append(py::make_tuple(t.first, FreqArray(py::ssize_t(t.freq.size()), t.freq.data())));
    d["tables"] = tables;
    d["context_run"] = f.ctx_run;
    d["lanes"] = f.lanes;
    d["chunk_size"] = f.chunk_size;
    d["chunks"] = f.chunks.size();
    d["header_bytes"] = f.header_bytes;
    d["table_bytes"] = f.table_bytes;
    d["payload_bytes"] = f.payload_bytes;
    d["total_bytes"] = f.total_bytes;
    return d;
}

}  // namespace

PYBIND11_MODULE(_rans, m) {
    m.doc() = "pgolf-pack native rANS codec (see pgolf_pack.rans for the documented API)";
    m.attr("__version__") = PGOLF_VERSION;

    // Errors become pgolf_pack.errors classes: InputError for bad arguments, CorruptDataError
    // for bytes that fail validation. Both derive from ValueError.
    static py::object input_error = py::module_::import("pgolf_pack.errors").attr("InputError");
    static py::object corrupt_error = py::module_::import("pgolf_pack.errors").attr("CorruptDataError");
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const CodecError& e) {
            const py::object& type = e.status() == Status::InvalidArgument ? input_error : corrupt_error;
            PyErr_SetString(type.ptr(), e.what());
        }
    });

    m.def(
        "encode",
        [](py::array values, std::optional<ContextArray> contexts, uint64_t context_run, uint64_t num_tables,
           std::optional<std::vector<FreqArray>> tables, unsigned precision, int64_t table_offset, unsigned lanes,
           uint64_t chunk_size, unsigned threads) {
            const DType dt = dtype_of(values);
            values = py::array::ensure(values, py::array::c_style);
            std::vector<uint64_t> shape(values.shape(), values.shape() + values.ndim());
            const ContextSpec ctx = context_spec(contexts, context_run, num_tables);
            EncodeOptions opt{precision, lanes, chunk_size, threads};
            std::optional<TableSet> given;
            if (tables) given = table_set(*tables, precision);
            const void* data = values.data();
            EncodedFrame frame;
            {
                py::gil_scoped_release release;
                frame = encode_frame(data, dt, shape, ctx, given ? &*given : nullptr, table_offset, opt);
            }
            PyObject* out = PyBytes_FromStringAndSize(nullptr, py::ssize_t(frame.size()));
            if (!out) throw py::error_already_set();
            uint8_t* dst = reinterpret_cast<uint8_t*>(PyBytes_AS_STRING(out));
            {
                py::gil_scoped_release release;
                frame.write(dst);
            }
            return py::reinterpret_steal<py::bytes>(out);
        },
        py::arg("values"), py::arg("contexts") = py::none(), py::arg("context_run") = 0, py::arg("num_tables") = 0,
        py::arg("tables") = py::none(), py::arg("precision") = 0, py::arg("table_offset") = 0, py::arg("lanes") = 0,
        py::arg("chunk_size") = 0, py::arg("threads") = 0);

    m.def(
        "decode",
        [](py::buffer data, std::optional<ContextArray> contexts, unsigned threads, const std::string& kernel,
           uint64_t max_symbols, uint64_t max_table_entries) {
            Bytes bytes(data);
            const Kernel k = kernel_of(kernel);
            Frame f = parse_frame(bytes.data(), bytes.size(), DecodeLimits{max_symbols, max_table_entries});
            std::vector<py::ssize_t> shape(f.shape.begin(), f.shape.end());
            py::array out(numpy_dtype(f.dtype), shape);
            const uint16_t* ids = contexts ? contexts->data() : nullptr;
            const uint64_t count = contexts ? uint64_t(contexts->size()) : 0;
            void* dst = out.mutable_data();
            {
                py::gil_scoped_release release;
                decode_frame(f, ids, count, dst, threads, k);
            }
            if (f.shape.empty()) return py::array(out.attr("reshape")(py::tuple()));  // 0-d
            return out;
        },
        py::arg("data"), py::arg("contexts") = py::none(), py::arg("threads") = 0, py::arg("kernel") = "auto",
        py::arg("max_symbols") = DecodeLimits{}.max_symbols,
        py::arg("max_table_entries") = DecodeLimits{}.max_table_entries);

    m.def(
        "frame_info",
        [](py::buffer data, uint64_t max_symbols, uint64_t max_table_entries) {
            Bytes bytes(data);
            return frame_dict(parse_frame(bytes.data(), bytes.size(), DecodeLimits{max_symbols, max_table_entries}));
        },
        py::arg("data"), py::arg("max_symbols") = DecodeLimits{}.max_symbols,
        py::arg("max_table_entries") = DecodeLimits{}.max_table_entries);

    m.def(
        "histogram",
        [](py::array values, std::optional<ContextArray> contexts, uint64_t context_run, uint64_t num_tables) {
            const DType dt = dtype_of(values);
            values = py::array::ensure(values, py::array::c_style);
            const ContextSpec ctx = context_spec(contexts, context_run, num_tables);
            Histogram h;
            {
                py::gil_scoped_release release;
                h = histogram(values.data(), dt, uint64_t(values.size()), ctx);
            }
            py::list counts;
            for (const auto& c : h.counts) counts.append(CountArray(py::ssize_t(c.size()), c.data()));
            return py::make_tuple(h.offset, counts);
        },
        py::arg("values"), py::arg("contexts") = py::none(), py::arg("context_run") = 0, py::arg("num_tables") = 0);

    m.def(
        "choose_precision",
        [](const std::vector<CountArray>& counts) {
            Histogram h;
            h.alphabet = counts.empty() ? 0 : size_t(counts[0].size());
            for (const auto& c : counts) h.counts.emplace_back(c.data(), c.data() + c.size());
            return choose_precision(h);
        },
        py::arg("counts"));

    m.def(
        "normalize_counts",
        [](const CountArray& counts, unsigned precision) {
            auto f = normalize_counts(counts.data(), size_t(counts.size()), precision);
            return FreqArray(py::ssize_t(f.size()), f.data());
        },
        py::arg("counts"), py::arg("precision"));

    m.def(
        "cost_bits",
        [](const CountArray& counts, const FreqArray& freqs, unsigned precision) {
            if (counts.size() != freqs.size())
                throw CodecError(Status::InvalidArgument, "counts and frequencies differ in length");
            return cost_bits(counts.data(), freqs.data(), size_t(counts.size()), precision);
        },
        py::arg("counts"), py::arg("freqs"), py::arg("precision"));

    m.def(
        "serialize_table",
        [](const FreqArray& freqs, unsigned precision) {
            ByteWriter w;
            write_table(w, freqs.data(), size_t(freqs.size()), precision);
            return to_bytes(w.bytes);
        },
        py::arg("freqs"), py::arg("precision"));

    m.def(
        "parse_table",
        [](py::buffer data, size_t alphabet, unsigned precision) {
            Bytes bytes(data);
            if (alphabet < 1 || alphabet > kMaxAlphabet)
                throw CodecError(Status::InvalidArgument, "alphabet must be in [1, 65536]");
            if (precision < kMinPrecision || precision > kMaxPrecision)
                throw CodecError(Status::InvalidArgument, "precision must be in [1, 16]");
            ByteReader r(bytes.data(), bytes.size(), "table");
            auto f = read_table(r, alphabet, precision);
            PGOLF_REQUIRE(r.remaining() == 0, Status::TrailingData,
                    std::to_string(r.remaining()) + " bytes follow the table");
            return FreqArray(py::ssize_t(f.size()), f.data());
        },
        py::arg("data"), py::arg("alphabet"), py::arg("precision"));

    m.def(
        "crc32c",
        [](py::buffer data, uint32_t crc) {
            Bytes bytes(data);
            py::gil_scoped_release release;
            return crc32c(bytes.data(), bytes.size(), crc);
        },
        py::arg("data"), py::arg("crc") = 0);

    m.def("kernels", []() {
        py::list out;
        for (Kernel k : {Kernel::Scalar, Kernel::Avx2, Kernel::Avx512, Kernel::Search})
            if (kernel_available(k)) out.append(kernel_name(k));
        return out;
    });
}
