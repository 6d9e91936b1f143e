// trace's JSON and text renderings of every record in the recorded fixture,
// pinned to golden files: the record contract and the formatter stay
// byte-identical whatever moves around them.
#include <doctest/doctest.h>

#include <filesystem>
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
  while (auto item = r.next()) {
    const auto* ev = std::get_if<RecordedEvent>(&*item);
    if (ev == nullptr) continue;
    std::string error;
    const auto e = decode_event(ev->bytes, &error);
    REQUIRE_MESSAGE(e.has_value(), "record " << records << ": " << error);
    append_event_json(json, *e);
    append_event_text(text, *e);
    records++;
  }
  CHECK(records == 409);
  const std::string dj = test::compare_golden("trace-fixture.jsonl", json);
  CHECK_MESSAGE(dj.empty(), dj);
  const std::string dt = test::compare_golden("trace-fixture.txt", text);
  CHECK_MESSAGE(dt.empty(), dt);
}
