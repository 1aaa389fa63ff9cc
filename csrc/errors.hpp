// errors.hpp: the codec's error vocabulary.
//
// Every failure of the native core is a CodecError carrying one Status. Input-dependent
// checks never use assert(): a decoder fed hostile bytes must throw, not crash. The
// bindings map InvalidArgument to the Python InputError and every other status to
// CorruptDataError; the status name prefixes each message.
#pragma once

#include <stdexcept>
#include <string>

namespace pgolf {

enum class Status {
    InvalidArgument,       // the caller asked for something impossible (encode side)
    Truncated,             // the bytes end before a field or a stream does
    TrailingData,          // bytes left over after the last field or word
    BadMagic,              // not a frame of ours
    UnsupportedVersion,    // a frame version this build cannot read
    BadHeader,             // a header field out of its allowed range
    BadTable,              // a frequency table that violates the format
    BadState,              // a rANS state that a valid encoder cannot produce
    ContextMismatch,       // the context array does not fit the stream
    ChecksumMismatch,      // CRC32C of the frame differs
    LimitExceeded,         // a size above the decoder's configured limits
};

inline const char* status_name(Status s) {
    switch (s) {
        case Status::InvalidArgument: return "invalid argument";
        case Status::Truncated: return "truncated";
        case Status::TrailingData: return "trailing data";
        case Status::BadMagic: return "bad magic";
        case Status::UnsupportedVersion: return "unsupported version";
        case Status::BadHeader: return "bad header";
        case Status::BadTable: return "bad table";
        case Status::BadState: return "bad state";
        case Status::ContextMismatch: return "context mismatch";
        case Status::ChecksumMismatch: return "checksum mismatch";
        case Status::LimitExceeded: return "limit exceeded";
    }
    return "unknown";
}

class CodecError : public std::runtime_error {
public:
    CodecError(Status status, const std::string& message)
        : std::runtime_error(std::string(status_name(status)) + ": " + message), status_(status) {}
    Status status() const { return status_; }

private:
    Status status_;
};

[[noreturn]] inline void fail(Status status, const std::string& message) {
    throw CodecError(status, message);
}

// Checks a condition; the message expression is only evaluated when the check fails, so
// checks inside per-symbol loops cost a compare and a branch, not a string.
#define PGOLF_REQUIRE(cond, status, message)             \
    do {                                                  \
        if (!(cond)) ::pgolf::fail((status), (message));  \
    } while (0)

}  // namespace pgolf
