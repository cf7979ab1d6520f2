// Result<T>: the error channel of the core (format/, dump/, restore/, sys/).
//
// Errors carry a human message with context ("fd 7: readlink: No such file") and,
// where one exists, the errno that caused them. Exceptions are not used below tools/.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

namespace cr {

/// An error with context. `code` is the errno that caused it, or 0.
struct Error {
  std::string message;
  int code = 0;

  /// Prepends context: err.wrap("vma 0x1000") turns "read: EIO" into "vma 0x1000: read: EIO".
  Error wrap(std::string_view context) const& {
    return Error{std::string(context) + ": " + message, code};
  }
  Error wrap(std::string_view context) && {
    message.insert(0, std::string(context) + ": ");
    return std::move(*this);
  }
};

/// Error from the current errno: "what: strerror(errno)".
inline Error errno_error(std::string_view what, int err = errno) {
  return Error{std::string(what) + ": " + std::strerror(err), err};
}

inline Error make_error(std::string message, int code = 0) { return Error{std::move(message), code}; }

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit on purpose
  Result(Error err) : v_(std::move(err)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error err) : err_(std::move(err)), failed_(true) {}  // NOLINT

  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const Error& error() const& { return err_; }
  Error&& error() && { return std::move(err_); }

 private:
  Error err_;
  bool failed_ = false;
};

using Status = Result<void>;

}  // namespace cr

// Propagate an error: CR_TRY(expr) for Result<void>; CR_TRY_ASSIGN(var, expr) for Result<T>.
#define CR_CONCAT_INNER(a, b) a##b
#define CR_CONCAT(a, b) CR_CONCAT_INNER(a, b)

#define CR_TRY(expr)                                     \
  do {                                                   \
    auto cr_try_result_ = (expr);                        \
    if (!cr_try_result_.ok()) return std::move(cr_try_result_).error(); \
  } while (0)

#define CR_TRY_ASSIGN_IMPL(tmp, lhs, expr)    \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return std::move(tmp).error(); \
  lhs = std::move(tmp).value()

#define CR_TRY_ASSIGN(lhs, expr) CR_TRY_ASSIGN_IMPL(CR_CONCAT(cr_try_tmp_, __LINE__), lhs, expr)

// Same, adding context to the error on the way out.
#define CR_TRY_CTX(expr, ctx)                                             \
  do {                                                                    \
    auto cr_try_result_ = (expr);                                         \
    if (!cr_try_result_.ok()) return std::move(cr_try_result_).error().wrap(ctx); \
  } while (0)
