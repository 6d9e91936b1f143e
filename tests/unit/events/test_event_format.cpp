// Unit tests: the wall time trace puts on each record (time of day in text,
// unix seconds in JSON) from the monotonic timestamp and one offset.
#include <doctest/doctest.h>

#include <cstdlib>
#include <ctime>
#include <optional>
#include <string>

#include "events/event_format.hpp"

using namespace connscope;

namespace {

// 2026-11-21T21:03:27Z, the unix second the fixture recording started in.
constexpr int64_t kStartUnix = 1795295007;
constexpr uint64_t kStartMono = 9045'731932130;

std::string time_of_day(const WallClock& c, uint64_t ts_ns) {
  std::string out;
  c.append_time_of_day(out, ts_ns);
  return out;
}

// Sets TZ for the scope and puts the previous value back.
class ScopedTz {
 public:
  explicit ScopedTz(const char* tz) {
    if (const char* old = std::getenv("TZ")) old_ = old;
    setenv("TZ", tz, 1);
    tzset();
  }
  ~ScopedTz() {
    if (old_)
      setenv("TZ", old_->c_str(), 1);
    else
      unsetenv("TZ");
    tzset();
  }
  ScopedTz(const ScopedTz&) = delete;
  ScopedTz& operator=(const ScopedTz&) = delete;

 private:
  std::optional<std::string> old_;
};

}  // namespace

TEST_CASE("wall clock: time of day with milliseconds, truncated, from the monotonic timestamp") {
  const WallClock c(kStartUnix * 1'000'000'000 - static_cast<int64_t>(kStartMono), WallClock::Zone::utc);
  CHECK(c.unix_ns(kStartMono) == kStartUnix * 1'000'000'000);
  CHECK(time_of_day(c, kStartMono) == "21:03:27.000");
  CHECK(time_of_day(c, kStartMono + 1'500'000) == "21:03:27.001");  // the cached second, new milliseconds
  CHECK(time_of_day(c, kStartMono + 999'999'999) == "21:03:27.999");
  CHECK(time_of_day(c, kStartMono + 1'000'000'000) == "21:03:28.000");
  CHECK(time_of_day(c, kStartMono + 22 * 60'000'000'000ull) == "21:25:27.000");
  CHECK(time_of_day(c, kStartMono + 3 * 3600'000'000'000ull) == "00:03:27.000");  // past midnight

  // Before 1970 (a nonsense offset) still formats: floor, not truncation toward zero.
  CHECK(time_of_day(WallClock(-1'500'000'000, WallClock::Zone::utc), 0) == "23:59:58.500");

  // The recording's start pair gives the same offset.
  const WallClock r = WallClock::from_pair(kStartMono, static_cast<double>(kStartUnix), WallClock::Zone::utc);
  CHECK(r.offset_ns() == c.offset_ns());
}

TEST_CASE("wall clock: the local zone follows TZ") {
  const WallClock utc(kStartUnix * 1'000'000'000, WallClock::Zone::utc);
  {
    ScopedTz tz("XST-5:30");  // POSIX TZ string: no tzdata needed
    const WallClock local(kStartUnix * 1'000'000'000);
    CHECK(time_of_day(local, 123'000'000) == "02:33:27.123");
    CHECK(time_of_day(utc, 123'000'000) == "21:03:27.123");
  }
  ScopedTz tz("UTC0");
  CHECK(time_of_day(WallClock(kStartUnix * 1'000'000'000), 0) == "21:03:27.000");
}

TEST_CASE("wall clock: now() maps the current monotonic time to about now") {
  const WallClock c = WallClock::now();
  timespec mono{}, real{};
  clock_gettime(CLOCK_MONOTONIC, &mono);
  clock_gettime(CLOCK_REALTIME, &real);
  const int64_t mono_ns = static_cast<int64_t>(mono.tv_sec) * 1'000'000'000 + mono.tv_nsec;
  const int64_t real_ns = static_cast<int64_t>(real.tv_sec) * 1'000'000'000 + real.tv_nsec;
  const int64_t error = c.unix_ns(static_cast<uint64_t>(mono_ns)) - real_ns;
  CHECK(error > -50'000'000);
  CHECK(error < 50'000'000);
}
