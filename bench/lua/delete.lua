-- DELETE records from a pool seeded for this run (ids BENCH_ID_PREFIX + n,
-- n < BENCH_ID_COUNT), each id once; threads take disjoint ids. A pool too
-- small for the run wraps around and shows up as 404s, never silently.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")
common.install()

local base = os.getenv("BENCH_RECORDS_PATH")
local prefix = os.getenv("BENCH_ID_PREFIX")
local count = tonumber(os.getenv("BENCH_ID_COUNT"))
local i = -1

function request()
  i = i + 1
  return wrk.format("DELETE", base .. "/" .. common.id(prefix, common.slot(i, count)))
end
