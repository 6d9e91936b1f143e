// trace's JSON and text renderings of every record in the recorded fixture,
// pinned to golden files: the record contract and the formatter stay
// byte-identical whatever moves around them. Wall times come from the
// recording's own start pair, formatted in UTC, so the files do not depend on
// the machine's clock or zone.
#include <doctest/doctest.h>

#include <filesystem>
#include <optional>
#include <string>

#include "events/event_decoder.hpp"
#include "events/event_format.hpp"
#include "record/recording.hpp"
#include "snapshot_fixture.hpp"

using namespace connscope;

TEST_CASE("trace renders the recorded fixture's records as the golden files say") {
  const std::string path = test::fixture_path("exhaustion.csrec");
  RecordingReader r(path);
  std::string json, text;
  int records = 0;
  std::optional<WallClock> clock;
  while (auto item = r.next()) {
    if (const auto* meta = std::get_if<RecordingMeta>(&*item)) {
      clock = WallClock::from_pair(meta->start_mono_ns, meta->start_unix_s, WallClock::Zone::utc);
      continue;
    }
    const auto* ev = std::get_if<RecordedEvent>(&*item);
    if (ev == nullptr) continue;
    std::string error;
    const auto e = decode_event(ev->bytes, &error);
    REQUIRE_MESSAGE(e.has_value(), "record " << records << ": " << error);
    REQUIRE_MESSAGE(clock.has_value(), "the recording's meta frame comes first");
    append_event_json(json, *e, *clock);
    append_event_text(text, *e, *clock);
    records++;
  }
  CHECK(records == 409);
  CHECK(clock->offset_ns() == 1795285961943373598);  // booted 2026-11-21T18:32:41.943Z
  const std::string dj = test::compare_golden("trace-fixture.jsonl", json);
  CHECK_MESSAGE(dj.empty(), dj);
  const std::string dt = test::compare_golden("trace-fixture.txt", text);
  CHECK_MESSAGE(dt.empty(), dt);
}
