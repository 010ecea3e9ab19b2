#include "cache/btree.h"

#include <algorithm>

namespace kcp::cache {
namespace {

using Node = BTree::Node;
using NodePtr = BTree::NodePtr;

constexpr size_t kLeafMin = BTree::kLeafMax / 4;
constexpr size_t kFanoutMin = BTree::kFanout / 4;

NodePtr makeLeaf(std::vector<ObjectPtr> objects) {
  auto n = std::make_shared<Node>();
  n->leaf = true;
  n->count = objects.size();
  n->objects = std::move(objects);
  return n;
}

NodePtr makeInternal(std::vector<NodePtr> children) {
  auto n = std::make_shared<Node>();
  n->leaf = false;
  n->first_keys.reserve(children.size());
  for (const auto& c : children) {
    n->first_keys.push_back(c->firstKey());
    n->count += c->count;
  }
  n->children = std::move(children);
  return n;
}

// The child whose range holds `key`: the last one whose first key is <= key.
size_t childIndex(const Node& n, std::string_view key) {
  const auto it = std::upper_bound(
      n.first_keys.begin(), n.first_keys.end(), key,
      [](std::string_view k, const std::string& first) { return k < std::string_view(first); });
  return it == n.first_keys.begin() ? 0 : size_t(it - n.first_keys.begin()) - 1;
}

template <typename Objects>  // const or not: the iterator type follows
auto lowerBoundIn(Objects& objects, std::string_view key) {
  return std::lower_bound(
      objects.begin(), objects.end(), key,
      [](const ObjectPtr& o, std::string_view k) { return std::string_view(o->key) < k; });
}

size_t fill(const Node& n) {
  return n.leaf ? n.objects.size() : n.children.size();
}
size_t maxFill(const Node& n) {
  return n.leaf ? BTree::kLeafMax : BTree::kFanout;
}
size_t minFill(const Node& n) {
  return n.leaf ? kLeafMin : kFanoutMin;
}

// One or two nodes replacing a subtree after an insert (two when it split).
struct Inserted {
  NodePtr left, right;
  bool added;
};

template <typename T>
std::pair<std::vector<T>, std::vector<T>> splitHalf(std::vector<T> v) {
  std::vector<T> right(std::make_move_iterator(v.begin() + long(v.size() / 2)),
                       std::make_move_iterator(v.end()));
  v.resize(v.size() / 2);
  return {std::move(v), std::move(right)};
}

Inserted insert(const NodePtr& node, ObjectPtr obj) {
  if (node->leaf) {
    std::vector<ObjectPtr> objects = node->objects;
    auto it = lowerBoundIn(objects, obj->key);
    bool added = true;
    if (it != objects.end() && (*it)->key == obj->key) {
      *it = std::move(obj);
      added = false;
    } else {
      objects.insert(it, std::move(obj));
    }
    if (objects.size() <= BTree::kLeafMax) return {makeLeaf(std::move(objects)), nullptr, added};
    auto [l, r] = splitHalf(std::move(objects));
    return {makeLeaf(std::move(l)), makeLeaf(std::move(r)), added};
  }
  const size_t i = childIndex(*node, obj->key);
  Inserted sub = insert(node->children[i], std::move(obj));
  std::vector<NodePtr> children = node->children;
  children[i] = std::move(sub.left);
  if (sub.right) children.insert(children.begin() + long(i) + 1, std::move(sub.right));
  if (children.size() <= BTree::kFanout)
    return {makeInternal(std::move(children)), nullptr, sub.added};
  auto [l, r] = splitHalf(std::move(children));
  return {makeInternal(std::move(l)), makeInternal(std::move(r)), sub.added};
}

NodePtr merge(const Node& a, const Node& b) {
  if (a.leaf) {
    std::vector<ObjectPtr> objects = a.objects;
    objects.insert(objects.end(), b.objects.begin(), b.objects.end());
    return makeLeaf(std::move(objects));
  }
  std::vector<NodePtr> children = a.children;
  children.insert(children.end(), b.children.begin(), b.children.end());
  return makeInternal(std::move(children));
}

struct Erased {
  NodePtr node;  // null: the subtree is now empty
  bool removed;
};

Erased erase(const NodePtr& node, std::string_view key) {
  if (node->leaf) {
    auto it = lowerBoundIn(node->objects, key);
    if (it == node->objects.end() || (*it)->key != key) return {node, false};
    std::vector<ObjectPtr> objects;
    objects.reserve(node->objects.size() - 1);
    objects.insert(objects.end(), node->objects.begin(), it);
    objects.insert(objects.end(), it + 1, node->objects.end());
    return {objects.empty() ? nullptr : makeLeaf(std::move(objects)), true};
  }
  const size_t i = childIndex(*node, key);
  Erased sub = erase(node->children[i], key);
  if (!sub.removed) return {node, false};
  std::vector<NodePtr> children = node->children;
  if (!sub.node) {
    children.erase(children.begin() + long(i));
  } else {
    children[i] = sub.node;
    // Keep runs long: an underfull child merges with a neighbour that has room.
    if (fill(*sub.node) < minFill(*sub.node) && children.size() > 1) {
      const size_t j = i + 1 < children.size() ? i + 1 : i - 1;
      const size_t a = std::min(i, j), b = std::max(i, j);
      if (fill(*children[a]) + fill(*children[b]) <= maxFill(*children[a])) {
        children[a] = merge(*children[a], *children[b]);
        children.erase(children.begin() + long(b));
      }
    }
  }
  return {children.empty() ? nullptr : makeInternal(std::move(children)), true};
}

bool check(const Node& n, size_t depth, size_t& leaf_depth, const std::string* lower,
           const std::string* upper, std::string* why) {
  const auto fail = [why](std::string m) {
    if (why != nullptr) *why = std::move(m);
    return false;
  };
  if (fill(n) == 0) return fail("empty node");
  if (fill(n) > maxFill(n)) return fail("overfull node");
  if (n.leaf) {
    if (leaf_depth == 0) leaf_depth = depth;
    if (leaf_depth != depth) return fail("leaves at different depths");
    if (n.count != n.objects.size()) return fail("leaf count");
    for (size_t i = 0; i < n.objects.size(); ++i) {
      const std::string& k = n.objects[i]->key;
      if (i > 0 && !(n.objects[i - 1]->key < k)) return fail("leaf keys not strictly increasing");
      if ((lower && k < *lower) || (upper && !(k < *upper)))
        return fail("key outside its subtree's range");
    }
    return true;
  }
  if (n.first_keys.size() != n.children.size()) return fail("first_keys size");
  size_t total = 0;
  for (size_t i = 0; i < n.children.size(); ++i) {
    if (n.first_keys[i] != n.children[i]->firstKey()) return fail("stale first key");
    const std::string* lo = &n.first_keys[i];
    const std::string* hi = i + 1 < n.children.size() ? &n.first_keys[i + 1] : upper;
    if (!check(*n.children[i], depth + 1, leaf_depth, lo, hi, why)) return false;
    total += n.children[i]->count;
  }
  if (total != n.count) return fail("internal count");
  return true;
}

}  // namespace

BTree BTree::upsert(ObjectPtr obj) const {
  if (!root_) return BTree(makeLeaf({std::move(obj)}), 1);
  Inserted r = insert(root_, std::move(obj));
  NodePtr root =
      r.right ? makeInternal({std::move(r.left), std::move(r.right)}) : std::move(r.left);
  return BTree(std::move(root), size_ + (r.added ? 1 : 0));
}

BTree BTree::erase(std::string_view key) const {
  if (!root_) return *this;
  Erased r = cache::erase(root_, key);
  if (!r.removed) return *this;
  NodePtr root = std::move(r.node);
  while (root && !root->leaf && root->children.size() == 1) root = root->children.front();
  return BTree(std::move(root), size_ - 1);
}

ObjectPtr BTree::find(std::string_view key) const {
  const Node* n = root_.get();
  if (n == nullptr) return nullptr;
  while (!n->leaf) n = n->children[childIndex(*n, key)].get();
  auto it = lowerBoundIn(n->objects, key);
  return it != n->objects.end() && (*it)->key == key ? *it : nullptr;
}

void BTree::Cursor::descend(const Node* node, std::string_view from) {
  while (!node->leaf) {
    const size_t i = childIndex(*node, from);
    path_.push_back({node, i});
    node = node->children[i].get();
  }
  leaf_ = node;
  index_ = size_t(lowerBoundIn(node->objects, from) - node->objects.begin());
  if (index_ == node->objects.size()) {
    index_ = node->objects.size() - 1;
    next();  // everything here is < from: the answer starts in the next leaf
  }
}

const ObjectPtr& BTree::Cursor::object() const {
  return leaf_->objects[index_];
}

void BTree::Cursor::next() {
  if (++index_ < leaf_->objects.size()) return;
  while (!path_.empty() && path_.back().index + 1 >= path_.back().node->children.size())
    path_.pop_back();
  if (path_.empty()) {
    leaf_ = nullptr;
    return;
  }
  ++path_.back().index;
  const Node* node = path_.back().node->children[path_.back().index].get();
  while (!node->leaf) {
    path_.push_back({node, 0});
    node = node->children.front().get();
  }
  leaf_ = node;
  index_ = 0;
}

BTree::Cursor BTree::lowerBound(std::string_view from) const {
  Cursor c;
  if (root_) c.descend(root_.get(), from);
  return c;
}

size_t BTree::countFrom(std::string_view from) const {
  size_t total = 0;
  const Node* n = root_.get();
  if (n == nullptr) return 0;
  while (!n->leaf) {
    const size_t i = childIndex(*n, from);
    for (size_t j = i + 1; j < n->children.size(); ++j) total += n->children[j]->count;
    n = n->children[i].get();
  }
  return total + size_t(n->objects.end() - lowerBoundIn(n->objects, from));
}

bool BTree::valid(std::string* why) const {
  if (!root_) {
    if (size_ != 0 && why != nullptr) *why = "no root but size " + std::to_string(size_);
    return size_ == 0;
  }
  size_t leaf_depth = 0;
  if (!check(*root_, 1, leaf_depth, nullptr, nullptr, why)) return false;
  if (root_->count != size_) {
    if (why != nullptr)
      *why = "size " + std::to_string(size_) + " but root count " + std::to_string(root_->count);
    return false;
  }
  return true;
}

}  // namespace kcp::cache
