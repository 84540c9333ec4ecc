// A growable byte buffer that, unlike std::string and std::vector, never zero-fills the room it
// grows into: the engine decrypts and encrypts straight into it.
#pragma once

#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

namespace osc {

class Bytes {
 public:
  Bytes() = default;
  ~Bytes() { std::free(data_); }
  Bytes(const Bytes&) = delete;
  Bytes& operator=(const Bytes&) = delete;
  Bytes(Bytes&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)), cap_(std::exchange(o.cap_, 0)) {}
  Bytes& operator=(Bytes&& o) noexcept {
    if (this != &o) {
      std::free(data_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
      cap_ = std::exchange(o.cap_, 0);
    }
    return *this;
  }

  char* data() { return data_; }
  const char* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // Room for `n` more bytes at the end (throws std::bad_alloc); Commit() what was written there.
  char* Reserve(size_t n) {
    if (cap_ - size_ < n) {
      size_t cap = cap_ * 2 > size_ + n ? cap_ * 2 : size_ + n;
      void* p = std::realloc(data_, cap);
      if (p == nullptr) throw std::bad_alloc();
      data_ = static_cast<char*>(p);
      cap_ = cap;
    }
    return data_ + size_;
  }
  size_t room() const { return cap_ - size_; }
  void Commit(size_t n) { size_ += n; }
  void Append(const char* p, size_t n) {
    std::memcpy(Reserve(n), p, n);
    Commit(n);
  }

  // Empty again; memory beyond `keep` bytes goes back, so idle connections hold little.
  void Reset(size_t keep = 16 * 1024) {
    size_ = 0;
    if (cap_ > keep) {
      std::free(data_);
      data_ = nullptr;
      cap_ = 0;
    }
  }

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
  size_t cap_ = 0;
};

}  // namespace osc
