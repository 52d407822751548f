#pragma once
// libarchive (tar.gz and zip reading) for the dataset downloads.
#include <archive.h>
#include <archive_entry.h>
