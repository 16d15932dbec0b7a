-- Shared by every scenario script: give each thread an id, count every
-- response whose status is not 2xx, and print one machine-readable line at
-- the end (BENCH_RESULT <json>) plus up to three sample failures per thread
-- (BENCH_SAMPLE <status> <body>). bench/load.py parses these lines.
local M = {}
local threads = {}

-- Per-thread globals (each wrk thread runs its own copy of the script).
non2xx = 0
statuses = {}
samples = {}

function M.setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function M.response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    local key = tostring(status)
    statuses[key] = (statuses[key] or 0) + 1
    if #samples < 3 then
      samples[#samples + 1] = key .. " " .. string.sub(body or "", 1, 200):gsub("%s", " ")
    end
  end
end

function M.done(summary, latency, requests)
  local bad, by_status = 0, {}
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non2xx")
    for key, n in pairs(thread:get("statuses")) do
      by_status[key] = (by_status[key] or 0) + n
    end
    for _, line in ipairs(thread:get("samples")) do
      io.write("BENCH_SAMPLE ", line, "\n")
    end
  end
  local parts = {}
  for key, n in pairs(by_status) do
    parts[#parts + 1] = string.format('"%s":%d', key, n)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,' ..
    '"non2xx":%d,"statuses":{%s},"socket_errors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    bad, table.concat(parts, ","), e.connect + e.read + e.write, e.timeout))
end

-- The number in 0..count-1 that request number `i` of this thread uses, so
-- that threads interleave over the range without colliding.
function M.slot(i, count)
  local threads_n = tonumber(os.getenv("BENCH_THREADS"))
  return (tid + i * threads_n) % count
end

function M.id(prefix, n)
  return prefix .. string.format("%0" .. (15 - #prefix) .. "d", n)
end

function M.install()
  setup, response, done = M.setup, M.response, M.done
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Accept"] = "application/json"
end

return M
