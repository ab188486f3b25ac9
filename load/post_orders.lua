-- wrk script for make bench: POST an OrderCreate with a fresh Idempotency-Key per request.
-- The same script drives the bare echo endpoint, so the two rates compare like for like.
local counter = 0
local thread_id = 0

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end

function init(args)
  math.randomseed(os.time() + tid)
  prefix = string.format("wrk-%d-%d-%d", os.time(), tid, math.random(1, 1000000000))
end

local body = [[{"customer_id":"bench-1","email":"bench@example.com","currency":"EUR","card_token":"tok_visa_4242",]] ..
  [["shipping_address":{"name":"B","line1":"L","city":"C","postal_code":"1","country":"NL"},]] ..
  [["lines":[{"sku":"SKU-1","quantity":1,"unit_price_minor":1000}]}]]

-- The API wants a bearer token (make bench mints one); the echo endpoint gets it too, unread.
local authorization = "Bearer " .. (os.getenv("GOLIVE_API_TOKEN") or "")

function request()
  counter = counter + 1
  local headers = {["Content-Type"] = "application/json", ["Idempotency-Key"] = prefix .. "-" .. counter,
    ["Authorization"] = authorization}
  return wrk.format("POST", nil, headers, body)
end

function done(summary, latency, requests)
  io.write(string.format("WRK_RESULT requests=%d errors=%d non2xx=%d duration_us=%d\n", summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, summary.duration))
end
