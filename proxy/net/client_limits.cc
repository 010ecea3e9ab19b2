#include "proxy/net/client_limits.h"

namespace kcp::proxy {

ClientConnectionCounter::Slot ClientConnectionCounter::acquire(const std::string& address) {
  std::lock_guard lock(mu_);
  int64_t& n = open_[address];
  if (n >= max_) return {};
  ++n;
  return Slot(this, address);
}

void ClientConnectionCounter::Slot::release() {
  if (counter_ == nullptr) return;
  std::lock_guard lock(counter_->mu_);
  if (const auto it = counter_->open_.find(address_);
      it != counter_->open_.end() && --it->second <= 0) {
    counter_->open_.erase(it);
  }
  counter_ = nullptr;
}

}  // namespace kcp::proxy
