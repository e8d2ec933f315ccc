// SHA-256 over OpenSSL's EVP interface, fed incrementally so a writer can hash
// the bytes as it writes them.
#ifndef CONVEYOR_COMMON_SHA256_H_
#define CONVEYOR_COMMON_SHA256_H_

#include <memory>
#include <string>

#include "absl/strings/string_view.h"

struct evp_md_ctx_st;

namespace conveyor {

// Not thread-safe; one per stream of bytes.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(absl::string_view bytes);
  // The digest of everything given to Update, as 64 lowercase hex digits.
  // Call once; the object is spent afterwards.
  std::string FinishHex();

 private:
  struct CtxDeleter {
    void operator()(evp_md_ctx_st* ctx) const;
  };
  std::unique_ptr<evp_md_ctx_st, CtxDeleter> ctx_;
};

// SHA-256 of `bytes` as 64 lowercase hex digits.
std::string Sha256Hex(absl::string_view bytes);

}  // namespace conveyor

#endif  // CONVEYOR_COMMON_SHA256_H_
