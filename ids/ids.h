// File: ids/ids.h
//
// Identifiers and nonces: the values that must never repeat across VM or container
// clones, drawn from the snapshot-safe generator. An umbrella header; it only gathers:
//   ids/uuid.h        UUIDs version 4 and 7, their text form and a strict parser
//   ids/nonce.h       random nonces of any size, and a nonce sequence for one key
//   ids/request_id.h  request IDs
//
// Example:
//   std::string id = snapsafe::uuid_v4_string();  // "3f2c...-...-4...-[89ab]...-..."
//   std::string rid = snapsafe::request_id();     // "9f86d081884c7d659a2feaa0c55ad015"
//   auto iv = snapsafe::nonce<12>();               // an AES-GCM nonce
#pragma once

#include "ids/nonce.h"
#include "ids/request_id.h"
#include "ids/uuid.h"
