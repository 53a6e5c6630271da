{
  "targets": [
    {
      "target_name": "lvunet_edge",
      "sources": [
        "native/core/preprocess.cc",
        "native/core/jpeg_decode.cc",
        "native/core/preview.cc",
        "native/core/postprocess.cc",
        "native/core/frame_job.cc",
        "native/core/ort_runtime.cc",
        "native/core/sd_notify.cc",
        "native/core/v4l2_device.cc",
        "native/binding/addon.cc",
        "native/binding/v4l2_binding.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native/third_party/onnxruntime/include"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-ffp-contract=off", "-fvisibility=hidden"],
      "libraries": ["-ldl", "-lturbojpeg"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "OTHER_CPLUSPLUSFLAGS": ["-ffp-contract=off"]
      },
      "msvs_settings": {
        "VCCLCompilerTool": {
          "ExceptionHandling": 1,
          "FloatingPointModel": 0,
          "AdditionalOptions": ["/std:c++17", "/fp:precise"]
        }
      }
    }
  ]
}
