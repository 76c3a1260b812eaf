-- Ask the driftward operator to roll the model back to its last verified-stable version now.
-- A new value of driftward.dev/rollback is a new request; the time makes it new.
local os = require("os")
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["driftward.dev/rollback"] = os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
