// Socket addresses as node:net reports them: "127.0.0.1" / "::1" and a port.
#pragma once

#include <uv.h>

#include <string>

namespace osc {

struct SocketName {
  std::string address;
  int port = 0;
  bool ipv6 = false;
};

// getsockname (local) or getpeername (remote) of a TCP handle; empty address if unavailable.
inline SocketName NameOf(const uv_tcp_t* tcp, bool remote) {
  sockaddr_storage ss;
  int len = sizeof ss;
  auto* sa = reinterpret_cast<sockaddr*>(&ss);
  SocketName out;
  if ((remote ? uv_tcp_getpeername(tcp, sa, &len) : uv_tcp_getsockname(tcp, sa, &len)) != 0) return out;
  char name[64] = {0};
  if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    uv_ip6_name(a, name, sizeof name);
    out.port = ntohs(a->sin6_port);
    out.ipv6 = true;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    uv_ip4_name(a, name, sizeof name);
    out.port = ntohs(a->sin_port);
  }
  out.address = name;
  return out;
}

}  // namespace osc
