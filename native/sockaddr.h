// Socket addresses as node:net reports them: "127.0.0.1" / "::1" and a port.
#pragma once

#include <uv.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace osc {

struct SocketName {
  std::string address;
  int port = 0;
  bool ipv6 = false;
};

// A raw IPv4 or IPv6 socket address, kept as the kernel gave it: formatted only when someone asks.
union RawAddress {
  sockaddr sa;
  sockaddr_in v4;
  sockaddr_in6 v6;
};

// getsockname (local) or getpeername (remote) of a TCP handle into `out`; false (and AF_UNSPEC) if
// unavailable.
inline bool RawNameOf(const uv_tcp_t* tcp, bool remote, RawAddress* out) {
  sockaddr_storage ss;
  int len = sizeof ss;
  auto* sa = reinterpret_cast<sockaddr*>(&ss);
  std::memset(out, 0, sizeof *out);
  if ((remote ? uv_tcp_getpeername(tcp, sa, &len) : uv_tcp_getsockname(tcp, sa, &len)) != 0) return false;
  if (ss.ss_family == AF_INET6) {
    std::memcpy(&out->v6, &ss, sizeof out->v6);
  } else if (ss.ss_family == AF_INET) {
    std::memcpy(&out->v4, &ss, sizeof out->v4);
  } else {
    return false;
  }
  return true;
}

// The any-address (0.0.0.0, ::): a socket accepted on it has a local address of its own.
inline bool IsWildcard(const RawAddress& a) {
  if (a.sa.sa_family == AF_INET) return a.v4.sin_addr.s_addr == htonl(INADDR_ANY);
  if (a.sa.sa_family == AF_INET6) {
    static const unsigned char zero[16] = {0};
    return std::memcmp(&a.v6.sin6_addr, zero, sizeof zero) == 0;
  }
  return true;
}

// The longest address text: INET6_ADDRSTRLEN less its NUL (an IPv4-mapped IPv6 address).
constexpr size_t kAddressTextMax = 45;

// Writes the address as node:net shows it (inet_ntop's text; IPv4 by hand, without printf) at `out`,
// which has room for kAddressTextMax characters; returns the end. Nothing for an unknown family.
inline char* WriteAddress(const RawAddress& a, char* out) {
  if (a.sa.sa_family == AF_INET) {
    const auto* b = reinterpret_cast<const unsigned char*>(&a.v4.sin_addr);
    for (int i = 0; i < 4; ++i) {
      unsigned v = b[i];
      if (v >= 100) *out++ = static_cast<char>('0' + v / 100);
      if (v >= 10) *out++ = static_cast<char>('0' + v / 10 % 10);
      *out++ = static_cast<char>('0' + v % 10);
      if (i < 3) *out++ = '.';
    }
  } else if (a.sa.sa_family == AF_INET6) {
    char text[64] = {0};
    uv_ip6_name(&a.v6, text, sizeof text);
    size_t n = std::min(std::strlen(text), kAddressTextMax);
    std::memcpy(out, text, n);
    out += n;
  }
  return out;
}

inline void AppendAddress(const RawAddress& a, std::string* out) {
  char text[kAddressTextMax];
  out->append(text, static_cast<size_t>(WriteAddress(a, text) - text));
}

inline int PortOf(const RawAddress& a) {
  if (a.sa.sa_family == AF_INET) return ntohs(a.v4.sin_port);
  if (a.sa.sa_family == AF_INET6) return ntohs(a.v6.sin6_port);
  return 0;
}

// getsockname (local) or getpeername (remote) of a TCP handle; empty address if unavailable.
inline SocketName NameOf(const uv_tcp_t* tcp, bool remote) {
  RawAddress raw;
  SocketName out;
  if (!RawNameOf(tcp, remote, &raw)) return out;
  AppendAddress(raw, &out.address);
  out.port = PortOf(raw);
  out.ipv6 = raw.sa.sa_family == AF_INET6;
  return out;
}

}  // namespace osc
