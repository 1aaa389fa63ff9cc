// byte_io.hpp: little-endian fields and LEB128 varints over explicit byte spans.
//
// ByteReader checks the remaining length before every read and names the field in its
// error, so a truncated frame says which field it ended in. Varints must be canonical
// (no redundant continuation bytes): each value has exactly one encoding, which keeps
// frames byte-identical across writers and makes tampering visible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "errors.hpp"

namespace pgolf {

class ByteWriter {
public:
    std::vector<uint8_t> bytes;

    void u8(uint8_t v) { bytes.push_back(v); }
    void u32le(uint32_t v) {
        for (int i = 0; i < 4; ++i) bytes.push_back(uint8_t(v >> (8 * i)));
    }
    void varint(uint64_t v) {
        while (v >= 0x80) {
            bytes.push_back(uint8_t(v) | 0x80);
            v >>= 7;
        }
        bytes.push_back(uint8_t(v));
    }
    void zigzag(int64_t v) { varint((uint64_t(v) << 1) ^ uint64_t(v >> 63)); }
    void append(const uint8_t* p, size_t n) { bytes.insert(bytes.end(), p, p + n); }
    size_t size() const { return bytes.size(); }
};

inline size_t varint_size(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) { v >>= 7; ++n; }
    return n;
}

class ByteReader {
public:
    ByteReader(const uint8_t* data, size_t size, const char* what)
        : base_(data), p_(data), end_(data + size), what_(what) {}

    size_t offset() const { return size_t(p_ - base_); }
    size_t remaining() const { return size_t(end_ - p_); }
    const uint8_t* cursor() const { return p_; }

    uint8_t u8(const char* field) {
        need(1, field);
        return *p_++;
    }
    uint32_t u32le(const char* field) {
        need(4, field);
        uint32_t v = uint32_t(p_[0]) | uint32_t(p_[1]) << 8 | uint32_t(p_[2]) << 16 | uint32_t(p_[3]) << 24;
        p_ += 4;
        return v;
    }
    uint64_t varint(const char* field) {
        uint64_t v = 0;
        for (int shift = 0;; shift += 7) {
            need(1, field);
            uint8_t b = *p_++;
            if (shift == 63 && b > 1)
                fail(Status::BadHeader, std::string(what_) + " field '" + field + "' overflows 64 bits");
            v |= uint64_t(b & 0x7f) << shift;
            if (!(b & 0x80)) {
                if (b == 0 && shift > 0)
                    fail(Status::BadHeader, std::string(what_) + " field '" + field +
                                                "' is a non-canonical varint at offset " +
                                                std::to_string(offset() - 1));
                return v;
            }
        }
    }
    int64_t zigzag(const char* field) {
        uint64_t z = varint(field);
        return int64_t(z >> 1) ^ -int64_t(z & 1);
    }
    const uint8_t* take(size_t n, const char* field) {
        need(n, field);
        const uint8_t* q = p_;
        p_ += n;
        return q;
    }

private:
    void need(size_t n, const char* field) const {
        if (remaining() < n)
            fail(Status::Truncated, std::string(what_) + " ends inside field '" + field + "' at offset " +
                                        std::to_string(offset()) + " (needs " + std::to_string(n) +
                                        " byte(s), " + std::to_string(remaining()) + " left)");
    }

    const uint8_t* base_;
    const uint8_t* p_;
    const uint8_t* end_;
    const char* what_;
};

}  // namespace pgolf
