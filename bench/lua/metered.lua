-- Charged metered reads: every request is a new (meter id, article) pair within the
-- default limit of 3, so every one is counted. Ids (METER_IDS) change every 3 requests;
-- articles (SLUGS) advance by one.
local slugs, ids = {}, {}
local counter, step = 0, 2
local threads = 0

function setup(thread)
  thread:set("offset", threads)
  threads = threads + 1
end

function init(args)
  for line in io.lines(os.getenv("SLUGS")) do slugs[#slugs + 1] = line end
  for line in io.lines(os.getenv("METER_IDS")) do ids[#ids + 1] = line end
  counter = tonumber(offset) or 0
end

function request()
  counter = counter + step
  local id = ids[math.floor(counter / 3) % #ids + 1]
  local slug = slugs[counter % #slugs + 1]
  return wrk.format("GET", "/v1/articles/" .. slug, { ["Paywall-Meter"] = id })
end
