-- PATCH /v1/admin/accounts/{id} with a new display name, for the account ids in IDS
-- (one per line), as the admin TOKEN: each edit is an `account.updated` webhook event.
-- Each connection waits PACE milliseconds between its edits.
local ids = {}
local counter = 0

function init(args)
  for line in io.lines(os.getenv("IDS")) do ids[#ids + 1] = line end
end

function delay()
  return tonumber(os.getenv("PACE") or "20")
end

function request()
  counter = counter + 1
  local body = '{"display_name":"Reader ' .. counter .. '"}'
  return wrk.format("PATCH", "/v1/admin/accounts/" .. ids[counter % #ids + 1],
    { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. os.getenv("TOKEN") }, body)
end
