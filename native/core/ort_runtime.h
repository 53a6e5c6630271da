// ONNX Runtime through its C API, loaded with dlopen from a path chosen at run time (the library
// shipped in onnxruntime-node by default; a vendor build for Jetson or an NPU in deployment).
// Plain C++: no napi.h. Failures throw CoreError with the library or model path as context.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

struct OrtApi;
struct OrtEnv;
struct OrtSession;
struct OrtMemoryInfo;

namespace lvunet {

class OrtLibrary {
 public:
  // Loads (once per path, for the life of the process: ONNX Runtime does not support being
  // unloaded) the library at `path`, picks the highest C API version that both the library and
  // our header support, and creates the process-wide OrtEnv.
  static std::shared_ptr<OrtLibrary> load(const std::string& path);

  const std::string& path() const { return path_; }
  const std::string& version() const { return version_; }
  std::uint32_t apiVersion() const { return apiVersion_; }
  const OrtApi* api() const { return api_; }
  OrtEnv* env() const { return env_; }

  std::vector<std::string> availableProviders() const;

  // ORT_API_VERSION of the vendored header this addon was compiled with.
  static std::uint32_t headerApiVersion();

  OrtLibrary(const OrtLibrary&) = delete;
  OrtLibrary& operator=(const OrtLibrary&) = delete;

 private:
  OrtLibrary() = default;
  std::string path_;
  std::string version_;
  std::uint32_t apiVersion_ = 0;
  void* handle_ = nullptr;
  const OrtApi* api_ = nullptr;
  OrtEnv* env_ = nullptr;
};

enum class GraphOptimization { Disabled, Basic, Extended, All };
GraphOptimization parseGraphOptimization(const std::string& name);

struct ProviderRequest {
  std::string name;
  std::vector<std::pair<std::string, std::string>> options;
};

struct SessionConfig {
  int intraOpThreads = 0;  // 0: ONNX Runtime's default
  int interOpThreads = 0;
  GraphOptimization graphOptimization = GraphOptimization::All;
  std::vector<ProviderRequest> providers;
  bool strict = false;
  // Session configuration entries (AddSessionConfigEntry), e.g. session.intra_op.allow_spinning=0.
  std::vector<std::pair<std::string, std::string>> configEntries;
};

struct ProviderFallback {
  std::string provider;
  std::string reason;
};

struct ProviderReport {
  std::vector<std::string> requested;
  std::vector<std::string> active;
  std::vector<ProviderFallback> fallbacks;
};

struct TensorInfo {
  std::string name;
  std::string elementType;  // "float32", "uint8", ... ("unknown(N)" for anything else)
  std::vector<std::int64_t> shape;  // -1 for a dynamic dimension
  std::vector<std::string> dimNames;  // symbolic name per dimension ("" when none)
};

struct RunResult {
  std::vector<float> data;
  std::vector<std::int64_t> dims;
};

class Session {
 public:
  Session(std::shared_ptr<OrtLibrary> library, const std::string& modelPath, const SessionConfig& config);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const std::string& modelPath() const { return modelPath_; }
  const ProviderReport& providers() const { return report_; }
  const std::vector<TensorInfo>& inputs() const { return inputs_; }
  const std::vector<TensorInfo>& outputs() const { return outputs_; }

  // Runs the model on one float32 input and returns its first output (which must be float32).
  // Thread-safe (OrtApi::Run is); call it off the JS thread.
  RunResult run(const float* data, std::size_t length, const std::vector<std::int64_t>& dims) const;

 private:
  std::shared_ptr<OrtLibrary> library_;
  std::string modelPath_;
  OrtSession* session_ = nullptr;
  OrtMemoryInfo* memoryInfo_ = nullptr;
  ProviderReport report_;
  std::vector<TensorInfo> inputs_;
  std::vector<TensorInfo> outputs_;
};

}  // namespace lvunet
