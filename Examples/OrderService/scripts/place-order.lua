-- wrk script for scripts/load.sh: every request places a new order, with an order id and an
-- Idempotency-Key unique to the run (the first argument after `--`), the wrk thread and the request.
-- Answers other than 201 are counted per thread and reported at the end.

local threads = {}
local next_thread = 1

function setup(thread)
  thread:set("thread_id", next_thread)
  next_thread = next_thread + 1
  table.insert(threads, thread)
end

function init(args)
  run = args[1] or tostring(os.time())
  counter = 0
  failures = 0
end

function request()
  counter = counter + 1
  local id = string.format("%s-%d-%d", run, thread_id, counter)
  local body = '{"order_id":"' .. id .. '","customer":"load"}'
  return wrk.format("POST", "/orders", {
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = "k-" .. id,
  }, body)
end

function response(status, headers, body)
  if status ~= 201 then
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local failed = 0
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("failures")
  end
  io.write(string.format("place-order: %d requests, %d not answered 201, %d socket errors\n",
    summary.requests, failed,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
  io.write(string.format("latency p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms; %.0f requests/s\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.requests / (summary.duration / 1e6)))
end
