-- Charged metered reads: every request is a new (meter id, article) pair within the
-- default limit of 3, so every one is counted. Ids (METER_IDS) change every 3 requests;
-- articles (SLUGS) advance by one. With several wrk processes (one per instance),
-- WRK_PROCESS and WRK_PROCESSES interleave them so that no pair is asked for twice.
-- With READERS set, the first READERS ids are readers who come back: each re-reads the
-- same 3 articles over and over, so after its first 3 reads every request is a re-read
-- of an article its meter has counted (the `reread` scenario).
-- Each article's request is built once, in init, around a place for the id, so that a
-- request costs the load generator one concatenation.
local before, after, ids = {}, {}, {}
local counter = 0
local threads = 0
local process = tonumber(os.getenv("WRK_PROCESS") or "0")
local processes = tonumber(os.getenv("WRK_PROCESSES") or "1")
local per_process = tonumber(os.getenv("WRK_THREADS") or "2")
local step = processes * per_process
local readers = tonumber(os.getenv("READERS") or "0")

function setup(thread)
  thread:set("offset", threads)
  threads = threads + 1
end

function init(args)
  for line in io.lines(os.getenv("SLUGS")) do
    local made = wrk.format("GET", "/v1/articles/" .. line, { ["Paywall-Meter"] = "@" })
    local at = made:find("@", 1, true)
    before[#before + 1] = made:sub(1, at - 1)
    after[#after + 1] = made:sub(at + 1)
  end
  for line in io.lines(os.getenv("METER_IDS")) do ids[#ids + 1] = line end
  -- Every thread of every process takes its own residue of the counter.
  counter = process * per_process + (tonumber(offset) or 0)
end

function request()
  counter = counter + step
  if readers > 0 then
    local reader = counter % readers
    local slug = (reader * 3 + math.floor(counter / readers) % 3) % #before + 1
    return before[slug] .. ids[reader + 1] .. after[slug]
  end
  local id = ids[math.floor(counter / 3) % #ids + 1]
  local slug = counter % #before + 1
  return before[slug] .. id .. after[slug]
end
