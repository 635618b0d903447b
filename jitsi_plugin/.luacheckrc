-- luacheck configuration for Prosody modules (Prosody 0.12 module API).
std = "lua51+lua52+lua53+lua54"
max_line_length = 120

-- Globals that Prosody provides to every module environment.
read_globals = {
	"prosody",
	"hosts",
	"import",
	module = {
		fields = {
			-- attributes
			host = { other_fields = true }, name = {}, path = {}, environment = {}, loaded = {}, event_handlers = {},
			-- functions (core/moduleapi.lua)
			get_name = {}, get_host = {}, get_host_type = {}, set_global = {},
			add_feature = {}, add_identity = {}, add_extension = {},
			fire_event = {}, hook = {}, hook_global = {}, hook_tag = {}, hook_object_event = {},
			unhook = {}, unhook_object_event = {}, wrap_event = {}, wrap_global = {}, wrap_object_event = {},
			require = {}, depends = {}, shared = {}, context = {},
			get_option = {}, get_option_scalar = {}, get_option_string = {}, get_option_number = {},
			get_option_boolean = {}, get_option_array = {}, get_option_set = {},
			get_option_inherited_set = {}, get_option_path = {},
			add_item = {}, remove_item = {}, get_host_items = {}, handle_items = {}, provides = {},
			send = {}, send_iq = {}, broadcast = {},
			add_timer = {}, cron = {}, hourly = {}, daily = {}, weekly = {},
			get_directory = {}, load_resource = {}, open_store = {},
			measure = {}, metric = {}, set_status = {}, log_status = {}, get_status = {},
			log = {},
			-- callbacks a module may define
			load = { read_only = false }, unload = { read_only = false },
			save = { read_only = false }, restore = { read_only = false },
			add_host = { read_only = false }, ready = { read_only = false },
			command = { read_only = false },
		},
	},
}

-- A Prosody configuration sample, not a module: it is Lua read by Prosody's config parser.
exclude_files = { "prosody-snippet.cfg.lua" }
