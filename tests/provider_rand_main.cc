// A program that knows nothing of snapsafe: it only calls OpenSSL's RAND_bytes, as an
// application retrofitted by configuration would (tests/provider_test.sh runs it with
// OPENSSL_CONF pointing at provider/openssl-snapsafe.cnf).
//
//   provider_rand_main name     the EVP_RAND behind RAND_bytes ("SNAPSAFE", "CTR-DRBG")
//   provider_rand_main hex N    N bytes from RAND_bytes as hex
//   provider_rand_main pr-hex N N bytes from the private DRBG (RAND_priv_bytes'), asked
//                               for prediction resistance (EVP_RAND_generate), as hex
//   provider_rand_main maps     whether the process maps SNAPSAFE_COUNTER_FILE (proof that
//                               snapsafe, not OpenSSL's DRBG, served RAND_bytes)
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const std::string command = argv[1];
  if (command == "name") {
    EVP_RAND_CTX* rand = RAND_get0_public(nullptr);
    if (rand == nullptr) return 1;
    std::printf("%s\n", EVP_RAND_get0_name(EVP_RAND_CTX_get0_rand(rand)));
    return 0;
  }
  if (command == "hex" && argc == 3) {
    std::vector<unsigned char> bytes(std::strtoul(argv[2], nullptr, 10));
    if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) return 1;
    for (unsigned char b : bytes) std::printf("%02x", b);
    std::printf("\n");
    return 0;
  }
  if (command == "pr-hex" && argc == 3) {
    std::vector<unsigned char> bytes(std::strtoul(argv[2], nullptr, 10));
    EVP_RAND_CTX* rand = RAND_get0_private(nullptr);
    if (rand == nullptr ||
        EVP_RAND_generate(rand, bytes.data(), bytes.size(), 0, 1, nullptr, 0) != 1) {
      return 1;
    }
    for (unsigned char b : bytes) std::printf("%02x", b);
    std::printf("\n");
    return 0;
  }
  if (command == "maps") {
    unsigned char byte;
    if (RAND_bytes(&byte, 1) != 1) return 1;
    const char* path = std::getenv("SNAPSAFE_COUNTER_FILE");
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (path != nullptr && std::getline(maps, line)) {
      if (line.find(path) != std::string::npos) {
        std::printf("mapped\n");
        return 0;
      }
    }
    std::printf("not mapped\n");
    return 0;
  }
  return 2;
}
