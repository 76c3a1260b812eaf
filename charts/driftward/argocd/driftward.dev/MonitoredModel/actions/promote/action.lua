-- Ask the driftward operator to promote the candidate version to stable now, ending its promotion window.
-- A new value of driftward.dev/promote is a new request; the time makes it new.
local os = require("os")
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["driftward.dev/promote"] = os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
