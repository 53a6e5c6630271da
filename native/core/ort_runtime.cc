#include "ort_runtime.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <utility>

#include "error.h"
#include "onnxruntime_c_api.h"

namespace lvunet {

namespace {

// Oldest C API we use: generic SessionOptionsAppendExecutionProvider (12), the CUDA/TensorRT V2
// option APIs and GetSymbolicDimensions are all present from ONNX Runtime 1.16 on.
constexpr std::uint32_t kMinApiVersion = 16;

// The JS names of GraphOptimizationLevel values and the C enum must stay in step.
static_assert(ORT_DISABLE_ALL == 0 && ORT_ENABLE_BASIC == 1 && ORT_ENABLE_EXTENDED == 2 && ORT_ENABLE_ALL == 99,
              "GraphOptimizationLevel values changed in onnxruntime_c_api.h");
static_assert(ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT == 1 && ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8 == 2 &&
                  ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16 == 10 && ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16 == 16,
              "ONNXTensorElementDataType values changed in onnxruntime_c_api.h");

class ScopeExit {
 public:
  explicit ScopeExit(std::function<void()> f) : f_(std::move(f)) {}
  ~ScopeExit() {
    if (f_) f_();
  }
  ScopeExit(const ScopeExit&) = delete;
  ScopeExit& operator=(const ScopeExit&) = delete;

 private:
  std::function<void()> f_;
};

// Takes ownership of `status`; returns its message ("" for success) and releases it.
std::string consumeStatus(const OrtApi* api, OrtStatus* status, OrtErrorCode* code = nullptr) {
  if (status == nullptr) return "";
  std::string message = api->GetErrorMessage(status);
  if (code != nullptr) *code = api->GetErrorCode(status);
  api->ReleaseStatus(status);
  if (message.empty()) message = "unknown ONNX Runtime error";
  return message;
}

void check(const OrtApi* api, OrtStatus* status, const std::string& what, CoreError::Context context = {}) {
  if (status == nullptr) return;
  OrtErrorCode code = ORT_FAIL;
  const std::string message = consumeStatus(api, status, &code);
  context.emplace_back("ortCode", std::to_string(static_cast<int>(code)));
  context.emplace_back("ortMessage", message);
  throw CoreError(codes::kOrt, what + ": " + message, std::move(context));
}

std::string elementTypeName(ONNXTensorElementDataType t) {
  switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return "float32";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: return "uint8";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8: return "int8";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16: return "uint16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16: return "int16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return "int32";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return "int64";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING: return "string";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: return "bool";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return "float16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: return "float64";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32: return "uint32";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64: return "uint64";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16: return "bfloat16";
    default: return "unknown(" + std::to_string(static_cast<int>(t)) + ")";
  }
}

enum class ProviderKind { Cpu, Cuda, TensorRt, Generic };

// Accepts both the short names of the by-name API ("CUDA", "XNNPACK") and the long names that
// GetAvailableProviders lists ("CUDAExecutionProvider", "XnnpackExecutionProvider").
ProviderKind providerKind(const std::string& name, std::string* genericName) {
  if (name == "CPU" || name == "CPUExecutionProvider") return ProviderKind::Cpu;
  if (name == "CUDA" || name == "CUDAExecutionProvider") return ProviderKind::Cuda;
  if (name == "TensorRT" || name == "TensorrtExecutionProvider") return ProviderKind::TensorRt;
  static const std::map<std::string, std::string> longToShort = {
      {"QNNExecutionProvider", "QNN"},         {"OpenVINOExecutionProvider", "OpenVINO"},
      {"XnnpackExecutionProvider", "XNNPACK"}, {"WebGpuExecutionProvider", "WebGPU"},
      {"SNPEExecutionProvider", "SNPE"},       {"CoreMLExecutionProvider", "CoreML"},
      {"DmlExecutionProvider", "DML"},         {"VSINPUExecutionProvider", "VSINPU"},
      {"ACLExecutionProvider", "ACL"},         {"AzureExecutionProvider", "AZURE"},
      {"WebNNExecutionProvider", "WEBNN"},     {"VitisAIExecutionProvider", "VitisAI"},
  };
  const auto it = longToShort.find(name);
  *genericName = it != longToShort.end() ? it->second : name;
  return ProviderKind::Generic;
}

// Appends one provider; returns "" on success or ONNX Runtime's reason for refusing it.
std::string appendProvider(const OrtApi* api, OrtSessionOptions* options, const ProviderRequest& request) {
  std::vector<const char*> keys, values;
  for (const auto& kv : request.options) {
    keys.push_back(kv.first.c_str());
    values.push_back(kv.second.c_str());
  }
  std::string genericName;
  switch (providerKind(request.name, &genericName)) {
    case ProviderKind::Cpu:
      return request.options.empty() ? "" : "the CPU provider takes no options";
    case ProviderKind::Cuda: {
      OrtCUDAProviderOptionsV2* cuda = nullptr;
      std::string reason = consumeStatus(api, api->CreateCUDAProviderOptions(&cuda));
      if (!reason.empty()) return reason;
      ScopeExit release([&] { api->ReleaseCUDAProviderOptions(cuda); });
      reason = consumeStatus(api, api->UpdateCUDAProviderOptions(cuda, keys.data(), values.data(), keys.size()));
      if (!reason.empty()) return reason;
      return consumeStatus(api, api->SessionOptionsAppendExecutionProvider_CUDA_V2(options, cuda));
    }
    case ProviderKind::TensorRt: {
      OrtTensorRTProviderOptionsV2* trt = nullptr;
      std::string reason = consumeStatus(api, api->CreateTensorRTProviderOptions(&trt));
      if (!reason.empty()) return reason;
      ScopeExit release([&] { api->ReleaseTensorRTProviderOptions(trt); });
      reason = consumeStatus(api, api->UpdateTensorRTProviderOptions(trt, keys.data(), values.data(), keys.size()));
      if (!reason.empty()) return reason;
      return consumeStatus(api, api->SessionOptionsAppendExecutionProvider_TensorRT_V2(options, trt));
    }
    case ProviderKind::Generic:
      return consumeStatus(api, api->SessionOptionsAppendExecutionProvider(options, genericName.c_str(), keys.data(),
                                                                          values.data(), keys.size()));
  }
  return "unknown provider kind";
}

std::uint32_t parseMinorVersion(const std::string& version) {
  // "1.30.0" -> 30. The C API version has equalled the 1.x minor version since ONNX Runtime 1.0.
  const auto dot = version.find('.');
  if (dot == std::string::npos || version.compare(0, dot, "1") != 0) return 0;
  return static_cast<std::uint32_t>(std::strtoul(version.c_str() + dot + 1, nullptr, 10));
}

}  // namespace

std::shared_ptr<OrtLibrary> OrtLibrary::load(const std::string& path) {
  static std::mutex mutex;
  static std::map<std::string, std::shared_ptr<OrtLibrary>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  const auto cached = cache.find(path);
  if (cached != cache.end()) return cached->second;

  const CoreError::Context ctx = {{"path", path}};
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0) {
    throw CoreError(codes::kLibraryNotFound, "ONNX Runtime library not found: '" + path + "' does not exist", ctx);
  }
  ::dlerror();
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = ::dlerror();
    throw CoreError(codes::kLibraryLoad,
                    "cannot load ONNX Runtime library '" + path + "': " + (err != nullptr ? err : "dlopen failed"),
                    ctx);
  }
  using GetApiBaseFn = const OrtApiBase* (*)();
  auto getApiBase = reinterpret_cast<GetApiBaseFn>(::dlsym(handle, "OrtGetApiBase"));
  if (getApiBase == nullptr) {
    ::dlclose(handle);
    throw CoreError(codes::kNotOnnxRuntime,
                    "'" + path + "' is not an ONNX Runtime library: it does not export OrtGetApiBase", ctx);
  }
  const OrtApiBase* base = getApiBase();
  const char* versionString = base != nullptr && base->GetVersionString != nullptr ? base->GetVersionString() : nullptr;
  if (versionString == nullptr) {
    throw CoreError(codes::kNotOnnxRuntime, "'" + path + "' is not an ONNX Runtime library: OrtGetApiBase failed", ctx);
  }
  const std::string version = versionString;
  // Ask for the highest version both sides know. GetApi() itself prints to stderr for a version
  // it does not have, so derive the library's maximum from its version string first.
  const std::uint32_t libraryMax = parseMinorVersion(version);
  std::uint32_t wanted = std::min<std::uint32_t>(ORT_API_VERSION, libraryMax != 0 ? libraryMax : ORT_API_VERSION);
  const OrtApi* api = nullptr;
  for (; wanted >= kMinApiVersion && api == nullptr; --wanted) api = base->GetApi(wanted);
  if (api == nullptr) {
    throw CoreError(codes::kApiVersion,
                    "ONNX Runtime " + version + " at '" + path + "' does not offer C API version " +
                        std::to_string(kMinApiVersion) + " to " + std::to_string(ORT_API_VERSION) +
                        " (need ONNX Runtime 1." + std::to_string(kMinApiVersion) + " or newer)",
                    {{"path", path}, {"version", version}});
  }
  ++wanted;  // undo the loop's final decrement

  std::shared_ptr<OrtLibrary> lib(new OrtLibrary());
  lib->path_ = path;
  lib->version_ = version;
  lib->apiVersion_ = wanted;
  lib->handle_ = handle;  // never dlclose'd: ONNX Runtime cannot be unloaded safely
  lib->api_ = api;
  check(api, api->CreateEnv(ORT_LOGGING_LEVEL_WARNING, "lvunet-edge", &lib->env_),
        "cannot create the ONNX Runtime environment from '" + path + "'", ctx);
  cache.emplace(path, lib);
  return lib;
}

std::uint32_t OrtLibrary::headerApiVersion() { return ORT_API_VERSION; }

std::vector<std::string> OrtLibrary::availableProviders() const {
  char** names = nullptr;
  int count = 0;
  check(api_, api_->GetAvailableProviders(&names, &count), "GetAvailableProviders failed", {{"path", path_}});
  std::vector<std::string> result;
  for (int i = 0; i < count; ++i) result.emplace_back(names[i]);
  consumeStatus(api_, api_->ReleaseAvailableProviders(names, count));
  return result;
}

GraphOptimization parseGraphOptimization(const std::string& name) {
  if (name == "disabled") return GraphOptimization::Disabled;
  if (name == "basic") return GraphOptimization::Basic;
  if (name == "extended") return GraphOptimization::Extended;
  if (name == "all") return GraphOptimization::All;
  throw CoreError(codes::kInvalidArgument,
                  "unknown graphOptimization '" + name + "' (expected disabled, basic, extended or all)");
}

namespace {

GraphOptimizationLevel toOrtLevel(GraphOptimization g) {
  switch (g) {
    case GraphOptimization::Disabled: return ORT_DISABLE_ALL;
    case GraphOptimization::Basic: return ORT_ENABLE_BASIC;
    case GraphOptimization::Extended: return ORT_ENABLE_EXTENDED;
    case GraphOptimization::All: return ORT_ENABLE_ALL;
  }
  return ORT_ENABLE_ALL;
}

TensorInfo describe(const OrtApi* api, OrtTypeInfo* typeInfo, std::string name, const CoreError::Context& ctx) {
  ScopeExit release([&] { api->ReleaseTypeInfo(typeInfo); });
  TensorInfo info;
  info.name = std::move(name);
  ONNXType onnxType = ONNX_TYPE_UNKNOWN;
  check(api, api->GetOnnxTypeFromTypeInfo(typeInfo, &onnxType), "GetOnnxTypeFromTypeInfo failed", ctx);
  if (onnxType != ONNX_TYPE_TENSOR) {
    info.elementType = "non-tensor";
    return info;
  }
  const OrtTensorTypeAndShapeInfo* tensor = nullptr;
  check(api, api->CastTypeInfoToTensorInfo(typeInfo, &tensor), "CastTypeInfoToTensorInfo failed", ctx);
  ONNXTensorElementDataType elementType = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  check(api, api->GetTensorElementType(tensor, &elementType), "GetTensorElementType failed", ctx);
  info.elementType = elementTypeName(elementType);
  size_t rank = 0;
  check(api, api->GetDimensionsCount(tensor, &rank), "GetDimensionsCount failed", ctx);
  info.shape.resize(rank);
  check(api, api->GetDimensions(tensor, info.shape.data(), rank), "GetDimensions failed", ctx);
  std::vector<const char*> symbolic(rank, nullptr);
  check(api, api->GetSymbolicDimensions(tensor, symbolic.data(), rank), "GetSymbolicDimensions failed", ctx);
  for (const char* s : symbolic) info.dimNames.emplace_back(s != nullptr ? s : "");
  return info;
}

}  // namespace

Session::Session(std::shared_ptr<OrtLibrary> library, const std::string& modelPath, const SessionConfig& config)
    : library_(std::move(library)), modelPath_(modelPath) {
  const OrtApi* api = library_->api();
  const CoreError::Context ctx = {{"modelPath", modelPath_}, {"libraryPath", library_->path()}};

  OrtSessionOptions* options = nullptr;
  check(api, api->CreateSessionOptions(&options), "CreateSessionOptions failed", ctx);
  ScopeExit releaseOptions([&] { api->ReleaseSessionOptions(options); });
  if (config.intraOpThreads < 0 || config.interOpThreads < 0) {
    throw CoreError(codes::kInvalidArgument, "thread counts must be >= 0 (0: ONNX Runtime's default)", ctx);
  }
  check(api, api->SetIntraOpNumThreads(options, config.intraOpThreads), "SetIntraOpNumThreads failed", ctx);
  check(api, api->SetInterOpNumThreads(options, config.interOpThreads), "SetInterOpNumThreads failed", ctx);
  check(api, api->SetSessionGraphOptimizationLevel(options, toOrtLevel(config.graphOptimization)),
        "SetSessionGraphOptimizationLevel failed", ctx);
  for (const auto& entry : config.configEntries) {
    check(api, api->AddSessionConfigEntry(options, entry.first.c_str(), entry.second.c_str()),
          "AddSessionConfigEntry(" + entry.first + "=" + entry.second + ") failed", ctx);
  }

  bool cpuListed = false;
  for (const ProviderRequest& request : config.providers) {
    report_.requested.push_back(request.name);
    const std::string reason = appendProvider(api, options, request);
    if (reason.empty()) {
      report_.active.push_back(request.name);
      std::string ignored;
      if (providerKind(request.name, &ignored) == ProviderKind::Cpu) cpuListed = true;
      continue;
    }
    if (config.strict) {
      CoreError::Context strictCtx = ctx;
      strictCtx.emplace_back("provider", request.name);
      strictCtx.emplace_back("reason", reason);
      throw CoreError(codes::kProvider,
                      "execution provider '" + request.name + "' is unavailable (strict mode) for model '" +
                          modelPath_ + "': " + reason,
                      std::move(strictCtx));
    }
    report_.fallbacks.push_back({request.name, reason});
  }
  // ONNX Runtime always places the CPU provider last, for whatever the others do not take.
  if (!cpuListed) report_.active.emplace_back("CPUExecutionProvider");

  check(api, api->CreateSession(library_->env(), modelPath_.c_str(), options, &session_),
        "cannot create an ONNX Runtime session for model '" + modelPath_ + "'", ctx);
  try {
    check(api, api->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &memoryInfo_),
          "CreateCpuMemoryInfo failed", ctx);
    OrtAllocator* allocator = nullptr;
    check(api, api->GetAllocatorWithDefaultOptions(&allocator), "GetAllocatorWithDefaultOptions failed", ctx);
    auto collect = [&](bool inputs) {
      size_t count = 0;
      check(api, inputs ? api->SessionGetInputCount(session_, &count) : api->SessionGetOutputCount(session_, &count),
            "SessionGet{Input,Output}Count failed", ctx);
      for (size_t i = 0; i < count; ++i) {
        char* rawName = nullptr;
        check(api,
              inputs ? api->SessionGetInputName(session_, i, allocator, &rawName)
                     : api->SessionGetOutputName(session_, i, allocator, &rawName),
              "SessionGet{Input,Output}Name failed", ctx);
        std::string name = rawName;
        consumeStatus(api, api->AllocatorFree(allocator, rawName));
        OrtTypeInfo* typeInfo = nullptr;
        check(api,
              inputs ? api->SessionGetInputTypeInfo(session_, i, &typeInfo)
                     : api->SessionGetOutputTypeInfo(session_, i, &typeInfo),
              "SessionGet{Input,Output}TypeInfo failed", ctx);
        (inputs ? inputs_ : outputs_).push_back(describe(api, typeInfo, std::move(name), ctx));
      }
    };
    collect(true);
    collect(false);
  } catch (...) {
    if (memoryInfo_ != nullptr) api->ReleaseMemoryInfo(memoryInfo_);
    api->ReleaseSession(session_);
    throw;
  }
}

Session::~Session() {
  const OrtApi* api = library_->api();
  if (memoryInfo_ != nullptr) api->ReleaseMemoryInfo(memoryInfo_);
  if (session_ != nullptr) api->ReleaseSession(session_);
}

RunResult Session::run(const float* data, std::size_t length, const std::vector<std::int64_t>& dims) const {
  const OrtApi* api = library_->api();
  const CoreError::Context ctx = {{"modelPath", modelPath_}};
  const std::string where = " (model '" + modelPath_ + "')";
  if (inputs_.size() != 1 || outputs_.empty()) {
    throw CoreError(codes::kInvalidArgument,
                    "run() feeds one input and reads the first output, but the model has " +
                        std::to_string(inputs_.size()) + " inputs and " + std::to_string(outputs_.size()) +
                        " outputs" + where,
                    ctx);
  }
  if (inputs_[0].elementType != "float32") {
    throw CoreError(codes::kInvalidArgument,
                    "input '" + inputs_[0].name + "' is " + inputs_[0].elementType + ", run() supplies float32" + where,
                    ctx);
  }
  std::size_t expected = 1;
  for (const std::int64_t d : dims) {
    if (d < 0) throw CoreError(codes::kInvalidArgument, "input dims must be >= 0" + where, ctx);
    expected *= static_cast<std::size_t>(d);
  }
  if (expected != length) {
    throw CoreError(codes::kInvalidArgument,
                    "input has " + std::to_string(length) + " elements but dims describe " + std::to_string(expected) +
                        where,
                    ctx);
  }

  OrtValue* input = nullptr;
  check(api,
        api->CreateTensorWithDataAsOrtValue(memoryInfo_, const_cast<float*>(data), length * sizeof(float), dims.data(),
                                            dims.size(), ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &input),
        "cannot create the input tensor" + where, ctx);
  ScopeExit releaseInput([&] { api->ReleaseValue(input); });
  const char* inputName = inputs_[0].name.c_str();
  const char* outputName = outputs_[0].name.c_str();
  OrtValue* output = nullptr;
  check(api, api->Run(session_, nullptr, &inputName, &input, 1, &outputName, 1, &output),
        "ONNX Runtime run failed" + where, ctx);
  ScopeExit releaseOutput([&] { api->ReleaseValue(output); });

  OrtTensorTypeAndShapeInfo* shape = nullptr;
  check(api, api->GetTensorTypeAndShape(output, &shape), "GetTensorTypeAndShape failed" + where, ctx);
  ScopeExit releaseShape([&] { api->ReleaseTensorTypeAndShapeInfo(shape); });
  ONNXTensorElementDataType elementType = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  check(api, api->GetTensorElementType(shape, &elementType), "GetTensorElementType failed" + where, ctx);
  if (elementType != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) {
    throw CoreError(codes::kInvalidArgument,
                    "output '" + outputs_[0].name + "' is " + elementTypeName(elementType) + ", run() returns float32" +
                        where,
                    ctx);
  }
  RunResult result;
  size_t rank = 0;
  check(api, api->GetDimensionsCount(shape, &rank), "GetDimensionsCount failed" + where, ctx);
  result.dims.resize(rank);
  check(api, api->GetDimensions(shape, result.dims.data(), rank), "GetDimensions failed" + where, ctx);
  size_t count = 0;
  check(api, api->GetTensorShapeElementCount(shape, &count), "GetTensorShapeElementCount failed" + where, ctx);
  float* out = nullptr;
  check(api, api->GetTensorMutableData(output, reinterpret_cast<void**>(&out)), "GetTensorMutableData failed" + where,
        ctx);
  result.data.assign(out, out + count);
  return result;
}

}  // namespace lvunet
