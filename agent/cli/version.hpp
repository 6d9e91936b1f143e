// The one place the version lives.
#pragma once

#define CONNSCOPE_VERSION "0.2.0"
