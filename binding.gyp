{
  "targets": [
    {
      "target_name": "openssl_session_cache",
      "sources": [
        "native/addon.cc",
        "native/errors.cc",
        "native/context.cc",
        "native/context_registry.cc",
        "native/context_binding.cc",
        "native/engine.cc",
        "native/engine_binding.cc",
        "native/certgen.cc",
        "native/tcp_connection.cc",
        "native/tcp_server.cc"
      ],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "defines": ["NAPI_VERSION=8", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS", "OPENSSL_API_COMPAT=30000", "OPENSSL_SUPPRESS_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "GCC_SYMBOLS_PRIVATE_EXTERN": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17"
      },
      "msvs_settings": {
        "VCCLCompilerTool": { "ExceptionHandling": 1, "AdditionalOptions": ["/std:c++17"] }
      },
      "conditions": [
        ["OS=='win'", {
          "defines": ["WIN32_LEAN_AND_MEAN", "NOMINMAX"]
        }]
      ]
    }
  ]
}
