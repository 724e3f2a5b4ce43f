-- wrk script: every request POSTs the next pre-built body (a fresh one-time token each).
-- Bodies are one JSON document per line in BODIES_FILE; thread k takes lines k, k+n, ...
local bodies_file = os.getenv("LEDGERCA_BENCH_BODIES")
local threads = {}
local counter = 0

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

function init(args)
   bodies = {}
   local n = 0
   local index = 0
   local total = tonumber(os.getenv("LEDGERCA_BENCH_THREADS"))
   for line in io.lines(bodies_file) do
      if index % total == id then
         n = n + 1
         bodies[n] = line
      end
      index = index + 1
   end
   count = n
   next_body = 0
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
end

function request()
   next_body = next_body + 1
   if next_body > count then
      -- Out of tokens: send an empty body, which the CA refuses (counted as an error).
      return wrk.format(nil, nil, nil, "{}")
   end
   return wrk.format(nil, nil, nil, bodies[next_body])
end

function done(summary, latency, requests)
   io.write(string.format(
      "LEDGERCA_RESULT {\"requests\":%d,\"duration_us\":%d,\"errors_status\":%d," ..
      "\"errors_connect\":%d,\"errors_read\":%d,\"errors_write\":%d,\"errors_timeout\":%d," ..
      "\"p50_us\":%d,\"p99_us\":%d,\"max_us\":%d}\n",
      summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
      summary.errors.read, summary.errors.write, summary.errors.timeout,
      latency:percentile(50), latency:percentile(99), latency.max))
end
