-- GET the URL given to wrk, unchanged (lists and the bare-HTTP ceiling).
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")
common.install()
