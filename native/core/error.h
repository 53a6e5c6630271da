// Error type of the native core. Plain C++ (no napi.h): the binding turns it into a JS Error whose
// `code` is `code` and which carries every context entry as a string property.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace lvunet {

class CoreError : public std::runtime_error {
 public:
  using Context = std::vector<std::pair<std::string, std::string>>;

  CoreError(std::string code, const std::string& message, Context context = {})
      : std::runtime_error(message), code_(std::move(code)), context_(std::move(context)) {}

  const std::string& code() const noexcept { return code_; }
  const Context& context() const noexcept { return context_; }

  // Returns a copy with one more context entry and, optionally, a prefix on the message.
  CoreError with(const std::string& key, const std::string& value, const std::string& prefix = "") const {
    Context ctx = context_;
    ctx.emplace_back(key, value);
    return CoreError(code_, prefix + what(), std::move(ctx));
  }

 private:
  std::string code_;
  Context context_;
};

// Error codes, shared with src/runtime/native/binding.ts (NativeErrorCode).
namespace codes {
inline constexpr const char* kLibraryNotFound = "ERR_ORT_LIBRARY_NOT_FOUND";
inline constexpr const char* kLibraryLoad = "ERR_ORT_LIBRARY_LOAD";
inline constexpr const char* kNotOnnxRuntime = "ERR_ORT_NOT_ONNXRUNTIME";
inline constexpr const char* kApiVersion = "ERR_ORT_API_VERSION";
inline constexpr const char* kOrt = "ERR_ORT";
inline constexpr const char* kProvider = "ERR_ORT_PROVIDER";
inline constexpr const char* kInvalidArgument = "ERR_INVALID_ARGUMENT";
inline constexpr const char* kFrameSize = "ERR_FRAME_SIZE";
}  // namespace codes

}  // namespace lvunet
