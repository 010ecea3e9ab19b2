// A persistent (path-copying) B+tree from object key to cached object. Every
// update returns a new root and shares all untouched nodes with the old one,
// so a snapshot is just a root pointer: O(1) to take, and never disturbed by
// later updates. Leaves hold runs of neighbouring objects in key order (one
// namespace is one contiguous range), the grain at which LIST responses will
// splice pre-compressed fragments.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cache/object.h"

namespace kcp::cache {

class BTree {
 public:
  static constexpr size_t kLeafMax = 64;
  static constexpr size_t kFanout = 32;

  struct Node;
  using NodePtr = std::shared_ptr<const Node>;

  BTree() = default;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // A new tree with `obj` inserted, or replacing the object with its key.
  BTree upsert(ObjectPtr obj) const;
  // A new tree without `key` (the same tree if absent).
  BTree erase(std::string_view key) const;
  // The object with `key`, or null.
  ObjectPtr find(std::string_view key) const;

  // Forward iteration in key order from the first key >= `from`.
  class Cursor {
   public:
    bool valid() const { return leaf_ != nullptr; }
    const ObjectPtr& object() const;
    void next();
    // The leaf the cursor is in and its position (for splicing whole leaves).
    const Node* leaf() const { return leaf_; }
    size_t indexInLeaf() const { return index_; }

   private:
    friend class BTree;
    struct Frame {
      const Node* node;
      size_t index;
    };
    std::vector<Frame> path_;  // internal nodes from the root
    const Node* leaf_ = nullptr;
    size_t index_ = 0;
    void descend(const Node* node, std::string_view from);
  };
  Cursor lowerBound(std::string_view from = {}) const;

  // Number of objects with keys >= `from` (for remainingItemCount).
  size_t countFrom(std::string_view from) const;

  // Checks the tree's invariants (ordering, counts, fill); for tests.
  bool valid(std::string* why) const;

 private:
  BTree(NodePtr root, size_t size) : root_(std::move(root)), size_(size) {}
  NodePtr root_;
  size_t size_ = 0;
};

struct BTree::Node {
  bool leaf = true;
  std::vector<ObjectPtr> objects;       // leaves: sorted by key
  std::vector<NodePtr> children;        // internal nodes
  std::vector<std::string> first_keys;  // internal: the smallest key under each child
  size_t count = 0;                     // objects in this subtree
  // Derived from a leaf's objects by readers and kept with it (the leaf never
  // changes, so neither does this): the LIST encoder's pre-compressed gzip
  // fragment. Set once, read by any thread.
  mutable std::atomic<std::shared_ptr<const void>> derived{};

  const std::string& firstKey() const { return leaf ? objects.front()->key : first_keys.front(); }
};

}  // namespace kcp::cache
